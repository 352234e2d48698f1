"""Shared rendering for every HTML report the pipeline writes (IG page, DQMI, MHIS, ...).

One Jinja2 environment with autoescape on, one base layout (``templates/base.html``) and one
stylesheet (``templates/style.css``, inlined by the layout so each page is a single file that
opens offline, from e-mail or a file share, with no request leaving the machine). A report
template extends ``base.html`` and fills ``title``, ``subtitle`` and ``content``.

Charts are drawn by matplotlib into static SVG (:mod:`mhsds_pipeline.reports.charts`) and
embedded with :func:`markupsafe.Markup`; nothing a report shows is scripted.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

__all__ = ["Markup", "environment", "render", "write_html"]


def _thousands(value, dp: int = 0) -> str:
    """``12,345`` (or ``12,345.6`` with ``dp``); None -> empty string."""
    if value is None:
        return ""
    return f"{value:,.{dp}f}"


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("mhsds_pipeline.reports", "templates"),
        autoescape=select_autoescape(("html", "htm", "xml", "j2")),
        undefined=StrictUndefined,  # a missing value is a bug, never an empty cell
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["thousands"] = _thousands
    return env


def render(template: str, /, **context) -> str:
    """Render ``templates/<template>`` with ``context`` (autoescaped)."""
    return environment().get_template(template).render(**context)


def write_html(path: Path, template: str, /, **context) -> Path:
    """Render and write atomically (a reader never sees half a page)."""
    text = render(template, **context)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
