"""The MHIS report's charts: matplotlib figures as static, deterministic inline SVG.

Spend against target is in £ million only (axis and bar labels in the same unit). An LTP chart
shows every month of the series window: the published value as a line with markers (hollow
when the measure's window has an unpublished month), the trajectory as a dashed line, gaps
where a value is suppressed or the month is not published, and a y-axis in the metric's unit.
The SVG groups carry ids (``mhis-spend``, ``mhis-target``, ``mhis-series``, ``mhis-trajectory``)
so a test can find what was drawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from markupsafe import Markup
from matplotlib.patches import Patch

from mhsds_pipeline.finance.report import gbp_m, metric_text, month_date, plain, unit_label
from mhsds_pipeline.reports.charts import (
    NHS_BLUE,
    NHS_GREY,
    NHS_PALE_GREY,
    NHS_RED,
    new_figure,
    to_svg,
)

TARGET_FILL = "#A3C3E6"
_svg = to_svg  # the shared helper: deterministic inline SVG, no external addresses


def spend_vs_target_svg(categories: list[dict], dp: int = 2) -> Markup | None:
    """Horizontal bars per in-scope category: YTD MHIS spend (red when below the YTD target)
    beside the YTD target, both in £ million with labels to ``dp`` decimals."""
    rows = [r for r in categories if r["in_mhis_scope"] and r.get("ytd_target_gbp") is not None]
    if not rows:
        return None
    names = [r.get("short_name") or r["category_name"] for r in rows]
    spend = [float(r["ytd_mhis_spend_gbp"]) / 1e6 for r in rows]
    target = [float(r["ytd_target_gbp"]) / 1e6 for r in rows]
    fig, ax = new_figure(7.6, 0.55 * len(rows) + 1.3)
    ys = list(range(len(rows)))
    h = 0.38
    colours = [NHS_BLUE if s >= t else NHS_RED for s, t in zip(spend, target, strict=True)]
    bars = ax.barh([y - h / 2 for y in ys], spend, height=h, color=colours, label="YTD MHIS spend")
    tbars = ax.barh([y + h / 2 for y in ys], target, height=h, color=TARGET_FILL, label="YTD target")
    for i, (b, t) in enumerate(zip(bars, tbars, strict=True)):
        b.set_gid(f"mhis-spend-{i}")
        t.set_gid(f"mhis-target-{i}")
    top = max(spend + target) or 1.0
    for y, s, t in zip(ys, spend, target, strict=True):
        ax.text(s + top * 0.01, y - h / 2, gbp_m(s * 1e6, dp), va="center", fontsize=7.5)
        ax.text(t + top * 0.01, y + h / 2, gbp_m(t * 1e6, dp), va="center", fontsize=7.5, color=NHS_GREY)
    ax.set_yticks(ys, names)
    ax.invert_yaxis()
    ax.set_xlim(0, top * 1.18)
    ax.set_xlabel("£ million")
    ax.xaxis.set_major_formatter(lambda v, _: f"£{v:,.{max(dp - 1, 1)}f}m")
    ax.tick_params(axis="y", length=0)
    ax.grid(axis="x", color=NHS_PALE_GREY)
    ax.set_axisbelow(True)
    ax.legend(
        handles=[
            Patch(color=NHS_BLUE, label="YTD MHIS spend"),
            Patch(color=NHS_RED, label="YTD MHIS spend below target"),
            Patch(color=TARGET_FILL, label="YTD target"),
        ],
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        ncol=3,
        frameon=False,
        fontsize=8,
    )
    return _svg(fig, "MHIS spend against target by category, year to date, £ million")


@dataclass(frozen=True)
class TrajectoryChart:
    svg: Markup
    gaps_note: str  # which months are gaps and why ('' when none)


def _month_axis(points: list[dict]) -> list[str]:
    """Every month from the first to the last point, so an unpublished month is a gap."""
    first, last = month_date(points[0]["period"]), month_date(points[-1]["period"])
    if first is None or last is None:
        return [p["period"] for p in points]
    months, y, m = [], first.year, first.month
    while (y, m) <= (last.year, last.month):
        months.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return months


def trajectory_svg(metric: dict, series: list[dict]) -> TrajectoryChart | None:
    """One LTP metric's monthly series against its trajectory (None when there is nothing to draw)."""
    points = sorted((s for s in series if s["metric_id"] == metric["metric_id"]), key=lambda s: s["period"])
    if not points or not any(s["value"] is not None or s["trajectory"] is not None for s in points):
        return None
    months = _month_axis(points)
    by_month = {p["period"]: p for p in points}
    xs = list(range(len(months)))
    values = [by_month[m]["value"] if m in by_month else None for m in months]
    y_values = [math.nan if v is None else float(v) for v in values]

    fig, ax = new_figure(4.9, 3.2)
    (line,) = ax.plot(xs, y_values, color=NHS_BLUE, linewidth=1.8, label="Published value")
    line.set_gid("mhis-series")
    complete = [(x, v) for x, v, m in zip(xs, y_values, months, strict=True) if _complete(by_month.get(m))]
    partial = [(x, v) for x, v, m in zip(xs, y_values, months, strict=True) if _partial(by_month.get(m))]
    handles = [line]
    if complete:
        marks = ax.plot(*zip(*complete, strict=True), "o", color=NHS_BLUE, markersize=4.5, label="Value")
        marks[0].set_gid("mhis-points")
    if partial:
        hollow = ax.plot(
            *zip(*partial, strict=True),
            "o",
            color=NHS_BLUE,
            markerfacecolor="white",
            markersize=4.5,
            label="Window has an unpublished month",
        )
        hollow[0].set_gid("mhis-points-incomplete")
        handles.append(hollow[0])

    trajectory = [by_month[m]["trajectory"] if m in by_month else None for m in months]
    set_values = {float(t) for t in trajectory if t is not None}
    if len(set_values) == 1:
        traj = ax.axhline(set_values.pop(), color=NHS_RED, linestyle="--", linewidth=1.4)
    elif set_values:
        y_traj = [math.nan if t is None else float(t) for t in trajectory]
        (traj,) = ax.plot(xs, y_traj, color=NHS_RED, linestyle="--", linewidth=1.4)
    else:
        traj = None
    if traj is not None:
        traj.set_label("Trajectory")
        traj.set_gid("mhis-trajectory")
        handles.append(traj)

    missing = [m for m in months if m not in by_month]
    suppressed = [m for m in months if m in by_month and by_month[m]["value"] is None]
    for m in missing:
        x = months.index(m)
        ax.axvspan(x - 0.5, x + 0.5, color=NHS_PALE_GREY, linewidth=0)
    for m in suppressed:
        ax.annotate(
            "*", (months.index(m), 0), xytext=(0, 3), textcoords="offset points", ha="center", fontsize=11
        )
    drawn = [v for v in y_values if not math.isnan(v)] + [float(t) for t in trajectory if t is not None]
    ax.set_ylim(0, max(drawn) * 1.12 or 1.0)
    ax.margins(x=0.03)
    ax.set_xticks(xs, months, rotation=45, ha="right", rotation_mode="anchor", fontsize=7.5)
    ax.set_ylabel(unit_label(metric), fontsize=8)
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:,.0f}")
    ax.grid(axis="y", color=NHS_PALE_GREY)
    ax.set_axisbelow(True)
    against = (
        f"trajectory {plain(metric['trajectory'])}" if metric["trajectory"] is not None else "no trajectory"
    )
    ax.set_title(f"{metric['metric_id']}: {metric_text(metric['value'])} ({against})")
    ax.legend(
        handles=handles, fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=3
    )
    notes = []
    if suppressed:
        notes.append(f"suppressed (*, fewer than 5): {', '.join(suppressed)}")
    if missing:
        notes.append(f"not published (shaded): {', '.join(missing)}")
    gaps = ("Gaps: " + "; ".join(notes) + ".") if notes else ""
    label = (
        f"{metric['metric_id']} by month, {unit_label(metric)}, against trajectory "
        f"{plain(metric['trajectory']) or 'not set'}"
    )
    return TrajectoryChart(_svg(fig, label), gaps)


def _complete(point: dict | None) -> bool:
    return bool(point and point["value"] is not None and point["window_complete"])


def _partial(point: dict | None) -> bool:
    return bool(point and point["value"] is not None and not point["window_complete"])
