"""A text run's sequences drawn as text: each token on a background coloured by its loss (the
sequential scale of the palette, with a legend in nats), the extraction's prefix and suffix
(a canary's secret) underlined; one sequence's trajectory over epochs; and a classifier
chart's words put as a text run means them.

HTML strings, every token escaped (`html.escape`), and plotly figures: no Streamlit calls.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale, unlabel_rgb

from memdash.dashboard.charts._common import SHARE_RANGE, margin
from memdash.dashboard.labels import label, text_relabels
from memdash.dashboard.palette import SEQUENTIAL, kind_color

NO_LOSS = "#E6E6E6"  # a token without a stored loss: light grey, no colour of the scale
PREFIX_MARK = "2px dashed #333333"  # underline of the prefix the extraction starts from
SUFFIX_MARK = "3px solid #000000"  # underline of the suffix it must reproduce
# how a token that has no glyph of its own is written (its line break kept after it)
SHOWN = {"\n": "↵", "\t": "⇥", "\r": "␍"}
GALLERY_CHARS = 220  # characters of a sequence a gallery cell shows before "…"
# a text run's own kinds, in the palette's colours
TEXT_KIND_COLORS = {kind: kind_color(kind) for kind in ("plain", "duplicate")}
# drawn first lie underneath: never-trained sequences, then plain, duplicates, canaries
TEXT_DRAW_ORDER = ("test", "reference", "plain", "duplicate", "canary")


def loss_colors(losses: np.ndarray, vmax: float) -> list[tuple[str, str]]:
    """Per token its background (the palette's sequential scale from 0 nats to `vmax`, a
    loss above `vmax` at its end) and the ink that reads on it (white on dark, black on
    light); NaN gets light grey.

    Parameters
    ----------
    losses : float, shape (T,), nats
    vmax : the loss at the scale's end (nats), > 0
    """
    losses = np.asarray(losses, dtype=np.float64)
    finite = np.isfinite(losses)
    shares = np.clip(np.where(finite, losses, 0.0) / vmax, 0.0, 1.0)
    backgrounds = sample_colorscale(SEQUENTIAL, shares.tolist()) if len(shares) else []
    return [
        (bg, _ink(bg)) if ok else (NO_LOSS, "#000000")
        for bg, ok in zip(backgrounds, finite, strict=True)
    ]


def _ink(background: str) -> str:
    """Black or white, whichever contrasts more with an ``rgb(r, g, b)`` background."""
    r, g, b = (c / 255 for c in unlabel_rgb(background))
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return "#000000" if luminance > 0.45 else "#FFFFFF"


def _shown(text: str) -> str:
    """A token's text as HTML: escaped, line breaks and tabs as visible signs (a line
    break then also breaks the line)."""
    out = html.escape(text)
    for char, sign in SHOWN.items():
        out = out.replace(char, sign + ("<br>" if char == "\n" else ""))
    return out


def token_html(
    texts: Sequence[str],
    losses: np.ndarray,
    *,
    prefix_len: int,
    suffix_len: int,
    vmax: float,
    suffix_name: str = "suffix",
    max_chars: int | None = None,
    font_size: str = "0.95rem",
) -> str:
    """One sequence as HTML: each token a span on the colour of its loss (`loss_colors`),
    its position, text and loss in its tooltip; the prefix (tokens ``0 .. prefix_len - 1``)
    underlined dashed and the suffix (the next `suffix_len`) solid, each region opened by a
    small tag. `max_chars` cuts the text after that many characters ("…").

    Parameters
    ----------
    texts : each token's display text (the tokenizer's ``token_texts``), length T
    losses : float, shape (T,), each token's loss (nats)
    suffix_name : what the suffix is called in its tag ("suffix", "secret")
    """
    colors = loss_colors(losses, vmax)
    spans, used = [], 0
    for i, (text, (bg, ink)) in enumerate(zip(texts, colors, strict=True)):
        if max_chars is not None and used >= max_chars:
            spans.append('<span style="color:#555555">…</span>')
            break
        used += len(text)
        if i == 0 and prefix_len > 0:
            spans.append(_tag("prefix"))
        if i == prefix_len and suffix_len > 0:
            spans.append(_tag(suffix_name))
        mark = PREFIX_MARK if i < prefix_len else SUFFIX_MARK if i < prefix_len + suffix_len else ""
        loss = "no loss stored" if not np.isfinite(losses[i]) else f"{float(losses[i]):.2f} nats"
        tip = html.escape(f"token {i}: {text!r}, loss {loss}", quote=True)
        style = f"background:{bg};color:{ink}"  # tokens touch: the text reads as text
        if mark:
            style += f";border-bottom:{mark}"
        spans.append(f'<span title="{tip}" style="{style}">{_shown(text)}</span>')
    return (
        f'<div style="font-family:ui-monospace,Menlo,Consolas,monospace;font-size:{font_size};'
        'line-height:2.0;white-space:pre-wrap;word-break:break-all">' + "".join(spans) + "</div>"
    )


def _tag(name: str) -> str:
    return (
        '<span style="font-family:sans-serif;font-size:0.7em;color:#555555;white-space:nowrap;'
        "display:inline-block;line-height:1.3;border:1px solid #999999;border-radius:3px;"
        'padding:0 3px;margin:0 3px">'
        f"{html.escape(name)} ▸</span>"
    )


def loss_legend_html(
    vmax: float, *, epoch: int, vocab: int, suffix_name: str = "suffix", steps: int = 11
) -> str:
    """The legend of `token_html`: the colour scale from 0 to `vmax` nats with its ticks,
    what its ends mean (0: the token predicted with certainty; ln `vocab`: a uniform guess),
    and the marks of the prefix and the suffix."""
    stops = sample_colorscale(SEQUENTIAL, np.linspace(0, 1, steps).tolist())
    gradient = ", ".join(stops)
    ticks = "".join(
        f'<span style="position:absolute;left:{100 * t / vmax:.2f}%;transform:translateX(-50%)">'
        f"{t:g}</span>"
        for t in range(math.floor(vmax) + 1)
    )
    mark = 'style="padding:0 4px;border-bottom:{}"'
    return (
        '<div style="font-family:sans-serif;font-size:0.85rem;color:#31333F">'
        f"<div>Token loss at epoch {int(epoch)} (nats): 0 = predicted with certainty, "
        f"{vmax:.2f} = ln {vocab}, a uniform guess over the vocabulary (higher losses take "
        "its colour); hover a token for its loss.</div>"
        '<div style="display:flex;align-items:flex-start;gap:18px;margin-top:4px">'
        '<div style="width:320px">'
        f'<div style="height:14px;border-radius:2px;background:linear-gradient(to right, '
        f'{gradient})"></div>'
        f'<div style="position:relative;height:1.2em;font-size:0.8em">{ticks}</div></div>'
        f"<span {mark.format(PREFIX_MARK)}>prefix</span>"
        f"<span {mark.format(SUFFIX_MARK)}>{html.escape(suffix_name)}</span>"
        f'<span style="padding:0 4px;background:{NO_LOSS}">no loss stored</span>'
        "</div></div>"
    )


def sequence_trajectory(frame: pd.DataFrame, *, epoch: int | None = None) -> go.Figure:
    """One sequence over epochs: its mean token loss (filled markers where extractable, open
    where not), extractable -> not extractable transitions (forgetting events) marked, its
    token accuracy on the right axis, and the chosen `epoch` as a vertical line.

    Parameters
    ----------
    frame : columns ``epoch``, ``loss`` (nats), ``correct`` (extractable),
        ``token_accuracy`` (share)
    """
    frame = frame.sort_values("epoch")
    extractable = frame["correct"].astype(bool).to_numpy()
    forgot = np.flatnonzero(extractable[:-1] & ~extractable[1:]) + 1
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=frame["epoch"],
            y=frame["loss"],
            name=f"{label('loss', text=True)}: filled when extractable, open when not",
            mode="lines+markers",
            marker={
                "symbol": np.where(extractable, "circle", "circle-open"),
                "size": 8,
                "color": "#333333",
            },
            line={"color": "#333333"},
        )
    )
    if "token_accuracy" in frame.columns:
        fig.add_trace(
            go.Scatter(
                x=frame["epoch"],
                y=frame["token_accuracy"],
                name=label("token_accuracy"),
                yaxis="y2",
                line={"color": "#999999", "dash": "dot"},
            )
        )
    if len(forgot):
        fig.add_trace(
            go.Scatter(
                x=frame["epoch"].to_numpy()[forgot],
                y=frame["loss"].to_numpy()[forgot],
                name="forgetting event (extractable, then not)",
                mode="markers",
                marker={"symbol": "x", "size": 12, "color": "#000000"},
            )
        )
    if epoch is not None:  # the epoch whose token losses colour the text above
        fig.add_vline(
            x=epoch,
            line={"color": "#999999", "width": 1},
            annotation_text="tokens above",
            annotation_position="top left",
            annotation_font_color="#555555",
        )
    first, last = (int(frame["epoch"].min()), int(frame["epoch"].max())) if len(frame) else (0, 1)
    fig.update_layout(
        xaxis={
            "title": "epoch",
            "tickformat": "d",
            "dtick": 1 if last <= 20 else None,
            "range": [first - 0.5, last + 0.5],
        },
        yaxis={"title": label("loss", text=True), "rangemode": "tozero"},
        yaxis2={
            "title": "token accuracy",  # the legend says of what: a long title is cut here
            "overlaying": "y",
            "side": "right",
            "range": SHARE_RANGE,
            "tickformat": ".0%",
            "dtick": 0.25,
            "showgrid": False,
        },
        legend={"orientation": "h", "y": -0.25},
        height=320,
        margin=margin(top=30),
    )
    return fig


def relabel(fig: go.Figure, words: dict[str, str]) -> go.Figure:
    """`fig` with every phrase of `words` (a classifier's label -> a text run's, as
    `labels.text_relabels` gives them) replaced in its title, axis and legend titles, trace
    names, hover texts and colour bar titles; the longest phrase first, each place once. A
    phrase already replaced stays as it is (relabelling twice changes nothing)."""
    if not words:
        return fig
    table = {new: new for new in words.values()} | words  # a replacement matches itself
    pattern = re.compile("|".join(re.escape(w) for w in sorted(table, key=len, reverse=True)))

    def sub(value: object) -> object:
        return pattern.sub(lambda m: table[m.group(0)], value) if isinstance(value, str) else value

    fig.update_layout(
        title_text=sub(fig.layout.title.text), legend_title_text=sub(fig.layout.legend.title.text)
    )
    fig.for_each_xaxis(lambda axis: axis.update(title_text=sub(axis.title.text)))
    fig.for_each_yaxis(lambda axis: axis.update(title_text=sub(axis.title.text)))

    def trace(t) -> None:
        t.update(name=sub(t.name))
        if "hovertemplate" in t:
            t.update(hovertemplate=sub(t.hovertemplate))
        if "marker" in t and "colorbar" in t.marker:
            t.marker.colorbar.title.text = sub(t.marker.colorbar.title.text)

    fig.for_each_trace(trace)
    return fig


def for_text_run(fig: go.Figure) -> go.Figure:
    """A chart drawn for a classifier, as it reads on a text run: its words (`relabel` with
    `labels.text_relabels`), the traces of the kinds ``plain`` and ``duplicate`` in their
    colours (`TEXT_KIND_COLORS`; a trace coloured by a value keeps its scale), and in a
    figure of kinds the traces in `TEXT_DRAW_ORDER` (others, such as a marked example, stay
    last)."""
    relabel(fig, text_relabels())
    for trace in fig.data:
        color = TEXT_KIND_COLORS.get(trace.name)
        if color and "marker" in trace and not _is_array(trace.marker.color):
            trace.marker.color = color
    if any(trace.name in TEXT_KIND_COLORS for trace in fig.data):  # a figure of kinds
        rank = {kind: i for i, kind in enumerate(TEXT_DRAW_ORDER)}
        fig.data = sorted(fig.data, key=lambda t: rank.get(t.name, len(rank)))
    return fig


def _is_array(value: object) -> bool:
    return value is not None and not isinstance(value, str)
