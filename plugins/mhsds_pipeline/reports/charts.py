"""Static SVG charts drawn by matplotlib, for embedding in the HTML reports.

matplotlib runs headless (a plain ``Figure``, no pyplot and no GUI backend; the SVG backend writes the file), fonts are embedded
as paths so the chart looks the same on any machine, and the SVG carries no date and a fixed
id salt so re-running a period writes the same bytes.
"""

from __future__ import annotations

import io
import re

import matplotlib
from markupsafe import Markup
from matplotlib.figure import Figure

#: NHS identity colours (https://service-manual.nhs.uk/design-system/styles/colour).
NHS_BLUE = "#005EB8"
NHS_DARK_BLUE = "#003087"
NHS_GREEN = "#007F3B"
NHS_RED = "#D5281B"
NHS_WARM_YELLOW = "#FFB81C"
NHS_GREY = "#768692"
NHS_PALE_GREY = "#E8EDEE"

_RC = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": NHS_GREY,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "svg.fonttype": "path",
    "svg.hashsalt": "mhsds",
}


matplotlib.rcParams.update(_RC)  # this process draws only report charts


def new_figure(width_in: float = 6.4, height_in: float = 3.0) -> tuple[Figure, object]:
    """A figure and one axes in the house style (caller draws, then calls :func:`to_svg`).
    A plain ``Figure`` (not pyplot): nothing is kept in a global figure registry."""
    fig = Figure(figsize=(width_in, height_in), dpi=96)
    return fig, fig.add_subplot()


def to_svg(fig: Figure, title: str) -> Markup:
    """The figure as inline SVG markup with an accessible ``<title>``; deterministic bytes."""
    buf = io.StringIO()
    fig.tight_layout()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Title": title})
    text = buf.getvalue()
    start = text.find("<svg")  # drop the XML declaration and DOCTYPE: the SVG sits inside HTML
    # matplotlib's RDF <metadata> block holds only creator/licence namespace URIs: the title is
    # in aria-label, and the page keeps no external addresses.
    svg = _METADATA.sub("", text[start:], count=1)
    svg = svg.replace(">", f' role="img" aria-label="{_attr(title)}">', 1)
    return Markup(svg)


_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.S)


def _attr(text: str) -> str:
    return str(Markup.escape(text))
