"""One example's input as a figure (an RGB or grey image, or a line for a 1-D signal) and as a
small image for st.image, whichever form the run stores it in (full, thumbnail, or read from
its source file); where there is no input to draw (a path run's missing file), the one-line
note given instead of it (a str, or numpy's 0-d array of one) is shown."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from memdash.dashboard.charts._common import margin

Drawable = np.ndarray | str
NOTE_GREY = 0.85  # the placeholder of a missing input: light grey, crossed darker
CROSS_GREY = 0.55


def note_of(x: Drawable) -> str | None:
    """The note given in place of an input (a str or a 0-d array of text), or None."""
    if isinstance(x, str):
        return x
    if isinstance(x, np.ndarray) and x.ndim == 0 and x.dtype.kind in "UO":
        return str(x.item())
    return None


def _as_signal_or_image(x: np.ndarray) -> np.ndarray:
    """Drop a leading single channel: (1, H, W) -> (H, W), (1, L) -> (L,)."""
    x = np.asarray(x, dtype=np.float32)
    return x[0] if x.ndim >= 2 and x.shape[0] == 1 else x


def _is_rgb(x: np.ndarray) -> bool:
    return x.ndim == 3 and x.shape[0] == 3


def _unit(x: np.ndarray) -> np.ndarray:
    """Scaled to [0, 1] by its own range (a constant input becomes 0)."""
    span = float(x.max() - x.min()) or 1.0
    return (x - x.min()) / span


def example_input(x: Drawable, *, title: str = "", photo: bool = False) -> go.Figure:
    """An example's input: an RGB image for 3-channel images, a grey image for other 2-D
    inputs (dark ink on white, as digits are drawn; as they are for a `photo`), a line for
    1-D ones (images of other channel counts: the mean over channels); a note given in its
    place (`note_of`) written in an empty frame."""
    fig = go.Figure()
    note = note_of(x)
    if note is not None:
        fig.add_annotation(text=note, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
        fig.update_layout(title=title, height=260, margin=margin())
        return fig
    x = _as_signal_or_image(x)
    if _is_rgb(x):
        rgb = np.round(_unit(x).transpose(1, 2, 0) * 255).astype(np.uint8)
        fig.add_trace(go.Image(z=rgb, hoverinfo="skip"))
        fig.update_yaxes(visible=False)
        fig.update_xaxes(visible=False)
    else:
        x = x.mean(axis=0) if x.ndim == 3 else x
        if x.ndim == 2:
            fig.add_trace(
                go.Heatmap(
                    z=x,
                    colorscale="Greys",
                    reversescale=photo,
                    showscale=False,
                    hoverinfo="skip",
                )
            )
            fig.update_yaxes(autorange="reversed", scaleanchor="x", visible=False)
            fig.update_xaxes(visible=False)
        else:
            fig.add_trace(go.Scatter(y=x.ravel(), mode="lines", line={"color": "#333"}))
            fig.update_xaxes(title="position")
    fig.update_layout(title=title, height=260, margin=margin())
    return fig


def thumbnail(
    x: Drawable, *, height: int = 28, photo: bool = False, width: int | None = None
) -> np.ndarray:
    """A float image in [0, 1] for st.image: (H, W, 3) for RGB images, (H, W) for other 2-D
    inputs (ink dark, unless a `photo`), a rasterized line for 1-D ones; for a note given in
    place of the input (`note_of`), a light grey square crossed darker (the input is missing).

    Given a `width` (in screen pixels), the image is enlarged by the largest whole factor
    that fits in it, each input pixel a block of equal pixels (nearest neighbour), so that
    shown at its own size it is as sharp as the input: a browser that scales a small image
    up smooths it into a blur.
    """
    if note_of(x) is not None:
        image = np.full((height, height), NOTE_GREY, np.float32)
        image[np.arange(height), np.arange(height)] = CROSS_GREY
        image[np.arange(height), np.arange(height)[::-1]] = CROSS_GREY
    else:
        image = _thumbnail(_as_signal_or_image(x), height, photo)
    factor = max(1, width // image.shape[1]) if width else 1
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def _thumbnail(x: np.ndarray, height: int, photo: bool) -> np.ndarray:
    if _is_rgb(x):
        return _unit(x).transpose(1, 2, 0)
    if x.ndim == 3:
        x = x.mean(axis=0)
    scaled = _unit(x)
    if x.ndim == 2:
        return scaled if photo else 1.0 - scaled
    rows = np.round((1 - scaled.ravel()) * (height - 1)).astype(int)
    image = np.ones((height, len(rows)), np.float32)
    image[rows, np.arange(len(rows))] = 0.0
    return image
