"""One self-contained HTML report: a header of facts, then sections of interactive plotly figures, tables,
static images and notes. plotly.js is embedded once per file (in the head), so a report opens offline, from
the MLflow UI's artifact view or from disk, and each figure is only its data."""
from __future__ import annotations

import base64
import html
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import plotly.offline

# Every figure is drawn by plotly.js with these options: no plotly logo/link, figures follow the page width.
FIGURE_CONFIG = {"displaylogo": False, "responsive": True}
STYLE = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:1.5em auto;padding:0 1em;color:#222}
h1{font-size:1.6em} h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #ddd}
.facts{color:#444;line-height:1.6} .note{color:#666;font-size:.92em} .figure{margin:.5em 0 1.2em}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:1em}
table{border-collapse:collapse;font-size:.95em} td,th{border-bottom:1px solid #e4e4e4;padding:.25em .8em;
text-align:right} th{background:#f6f6f6} td:first-child,th:first-child{text-align:left}
img{max-width:100%} pre{background:#f4f4f4;padding:1em;overflow-x:auto}"""


@lru_cache(maxsize=1)
def plotly_js() -> str:
    return plotly.offline.get_plotlyjs()


@dataclass
class Block:
    """One part of a section: an already rendered HTML fragment."""

    html: str


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)
    grid: bool = False  # figures side by side (e.g. one slice per parameter)

    def render(self) -> str:
        body = "\n".join(b.html for b in self.blocks)
        if self.grid:
            body = f'<div class="grid">{body}</div>'
        return f"<section><h2>{html.escape(self.title)}</h2>\n{body}</section>"


def figure_block(figure, height: int | None = None) -> Block:
    """A plotly figure as a div + its data; readable fonts, the height the figure asks for (or ``height``)."""
    figure.update_layout(font={"size": 13}, margin={"l": 60, "r": 30, "t": 50, "b": 60},
                         template="plotly_white")
    if height is not None:
        figure.update_layout(height=height)
    fragment = figure.to_html(full_html=False, include_plotlyjs=False, config=FIGURE_CONFIG,
                              default_height=figure.layout.height or 450, default_width="100%")
    return Block(f'<div class="figure">{fragment}</div>')


def table_block(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None,
                digits: int = 4) -> Block:
    """Rows of dicts as an HTML table; floats rounded to ``digits`` significant places."""
    columns = list(columns or (rows[0].keys() if rows else []))

    def cell(value) -> str:
        if isinstance(value, float):
            return f"{value:.{digits}g}"
        return html.escape("" if value is None else str(value))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell(row.get(c))}</td>" for c in columns) + "</tr>" for row in rows)
    return Block(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def png_block(png: bytes, alt: str) -> Block:
    encoded = base64.b64encode(png).decode("ascii")
    return Block(f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}"/>')


def text_block(text: str, note: bool = False) -> Block:
    return Block(f'<p{" class=note" if note else ""}>{html.escape(text)}</p>')


def preformatted_block(text: str) -> Block:
    return Block(f"<pre>{html.escape(text)}</pre>")


@dataclass
class Report:
    """``Report(title, facts)``; add sections; ``render()`` the page or ``write(path)`` it atomically."""

    title: str
    facts: Mapping[str, Any] = field(default_factory=dict)
    sections: list[Section] = field(default_factory=list)

    def section(self, title: str, blocks: Iterable[Block] = (), grid: bool = False) -> Section:
        section = Section(title, list(blocks), grid)
        self.sections.append(section)
        return section

    def figure(self, title: str, figure, note: str = "", height: int | None = None) -> Section:
        blocks = [figure_block(figure, height)]
        if note:
            blocks.append(text_block(note, note=True))
        return self.section(title, blocks)

    def unavailable(self, title: str, reason: str) -> Section:
        return self.section(title, [text_block(f"not available: {reason}", note=True)])

    def render(self) -> str:
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        facts = " · ".join(f"{html.escape(str(k))} <b>{html.escape(_fact(v))}</b>" for k, v in self.facts.items())
        body = "\n".join(s.render() for s in self.sections)
        return f"""<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(self.title)}</title><style>{STYLE}</style>
<script type="text/javascript">{plotly_js()}</script></head><body>
<h1>{html.escape(self.title)}</h1>
<p class="facts">{facts}<br><span class="note">written {stamp}</span></p>
{body}
</body></html>
"""

    def write(self, path: str | Path) -> Path:
        """Write the page next to where it belongs, renamed into place complete (never half-written)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(self.render())
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide it from a UI serving the store as another user
        os.replace(temporary, path)
        return path


def _fact(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
