"""Small vectorised helpers shared by the generator modules.

The generator keeps every table as a ``Frame``: a dict of EPR column name -> numpy array, in
an internal representation that is cheap to compute with:

* identifiers are integers (formatted as ``P0000001``... only when written, see ``ID_FORMATS``);
* ``team_id`` / ``ward_code`` are indexes into ``trust.TEAMS`` / ``trust.WARDS``;
* code columns are numpy unicode arrays where ``""`` means NULL (no real value is empty);
* timestamps are ``datetime64[s]`` and dates ``datetime64[D]``, ``NaT`` meaning NULL;
* integers use ``-1`` for NULL (``duration_minutes``, ``assessments.intervention_id``).

Columns whose name starts with ``_`` are model helpers and are never written.
"""

from __future__ import annotations

import numpy as np

Frame = dict[str, np.ndarray]

SECOND = np.timedelta64(1, "s")
MINUTE = np.timedelta64(60, "s")
HOUR = np.timedelta64(3600, "s")
DAY = np.timedelta64(86400, "s")
NAT_S = np.datetime64("NaT", "s")
NAT_D = np.datetime64("NaT", "D")

#: How integer identifiers are written: column -> (prefix, zero-padded width).
ID_FORMATS: dict[str, tuple[str, int]] = {
    "patient_id": ("P", 7),
    "referral_id": ("R", 7),
    "appointment_id": ("C", 8),
    "intervention_id": ("A", 9),
    "indirect_activity_id": ("IA", 9),
    "assessment_id": ("AS", 9),
    "admission_id": ("H", 7),
    "ward_stay_id": ("WS", 8),
    "diagnosis_id": ("DX", 8),
    "clinician_id": ("HCP", 5),
}

#: Identifier ranges that no generated row uses, for planted orphans (asserted at generation).
ORPHAN_ID_BASE = 9_000_000


def format_ids(column: str, values: np.ndarray) -> np.ndarray:
    """Integer ids -> their text form (unicode array); negative values -> ``""`` (NULL)."""
    prefix, width = ID_FORMATS[column]
    values = np.asarray(values, dtype=np.int64)
    out = np.strings.add(prefix, np.strings.zfill(values.astype("U"), width))
    if (values < 0).any():
        out = np.where(values < 0, "", out)
    return out


def choice(rng: np.random.Generator, pairs: tuple[tuple[str, float], ...], n: int) -> np.ndarray:
    """``n`` codes drawn from (code, weight) pairs."""
    codes = np.array([c for c, _ in pairs])
    w = np.array([p for _, p in pairs], dtype=float)
    return codes[rng.choice(len(codes), size=n, p=w / w.sum())]


def choice_rows(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """One column index per row of a (rows x options) weight matrix (rows with no weight -> -1)."""
    if weights.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    total = weights.sum(axis=1)
    cum = np.cumsum(weights, axis=1)
    u = rng.random(weights.shape[0]) * total
    idx = (cum <= u[:, None]).sum(axis=1)
    idx = np.minimum(idx, weights.shape[1] - 1)
    return np.where(total > 0, idx, -1)


def month_start(month_index: np.ndarray | int) -> np.ndarray:
    """Absolute month index (year*12 + month-1) -> first instant of that month (datetime64[s])."""
    return (np.datetime64("0000-01", "M") + np.asarray(month_index, dtype=np.int64)).astype("datetime64[s]")


def month_index(ts: np.ndarray) -> np.ndarray:
    """datetime64 -> absolute month index (year*12 + month-1); NaT -> a very negative number."""
    m = ts.astype("datetime64[M]")
    out = (m - np.datetime64("0000-01", "M")).astype(np.int64)
    return np.where(np.isnat(ts), np.iinfo(np.int64).min // 2, out)


def to_date(ts: np.ndarray) -> np.ndarray:
    """datetime64[s] -> datetime64[D] (NaT kept)."""
    return ts.astype("datetime64[D]")


def uniform_seconds(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """A timestamp drawn uniformly in ``[lo, hi)`` for each pair (whole seconds; needs hi > lo)."""
    span = (hi - lo).astype(np.int64)
    return lo + (rng.random(len(span)) * span).astype(np.int64).astype("timedelta64[s]")


def days(x: np.ndarray | float) -> np.ndarray:
    """Float days -> timedelta64[s]."""
    return (np.asarray(x) * 86400).astype(np.int64).astype("timedelta64[s]")


def take(frame: Frame, idx: np.ndarray) -> Frame:
    """Rows ``idx`` of every column."""
    return {k: v[idx] for k, v in frame.items()}


def concat(frames: list[Frame]) -> Frame:
    """Row-wise concatenation of frames with the same columns."""
    frames = [f for f in frames if f]
    if not frames:
        return {}
    keys = list(frames[0])
    return {k: np.concatenate([f[k] for f in frames]) for k in keys}


def nrows(frame: Frame) -> int:
    return len(next(iter(frame.values()))) if frame else 0
