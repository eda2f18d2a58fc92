"""Dashboard pages; each module exposes `render()` and runs nothing at import."""
