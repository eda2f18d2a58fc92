"""What a page shows, read back from Streamlit's AppTest as it reads on screen."""

from __future__ import annotations

import re

import pandas as pd

_ESCAPE = re.compile(r"\\(.)")


def unescaped(markdown: str) -> str:
    """Markdown as it reads: the backslash escapes of labels.md_text undone."""
    return _ESCAPE.sub(r"\1", markdown)


def runs_table(at) -> pd.DataFrame:
    """The Runs page's table: a static table whose cells and headers are markdown, every
    one escaped (labels.md_text), read back as it shows."""
    return at.table[0].value.map(unescaped).rename(columns=unescaped)
