"""memdash: record, measure and explore what a deep network memorizes."""

__version__ = "0.1.0"
