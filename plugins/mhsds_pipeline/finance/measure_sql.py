"""What the national measures share: a measure's description, its code lists as SQL, running a
statement with the parameters it uses, and Spark's whole-number rounding."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

#: England residents or unknown residence (NHS England: LADistrictAuth LIKE 'E%' OR NULL OR '').
ENGLAND = "(r.LADistrictAuth LIKE 'E%' OR r.LADistrictAuth IS NULL OR r.LADistrictAuth = '')"


@dataclass(frozen=True)
class Metric:
    metric_id: str
    name: str
    unit: str  # people | referrals | discharges | bed days | days
    kind: str  # count | mean | percent
    months: int  # window length in submitted months
    numerator: str | None = None  # the count a mean is suppressed on
    trajectory_id: str | None = None  # the local trajectory it is compared with
    source: str = ""  # NHS England's code: file (under menh_bbrb/notebooks) and lines


def codes(metric: str, code_list: str) -> str:
    return f"(SELECT code FROM ltp_code WHERE metric_id = '{metric}' AND code_list = '{code_list}')"


def run(con, sql: str, params: dict) -> tuple:
    """Execute with the parameters the statement uses (DuckDB refuses unused ones)."""
    used = set(re.findall(r"\$(\w+)", sql))
    return con.execute(sql, {k: v for k, v in params.items() if k in used}).fetchone()


def whole_number(value: float) -> int:
    """Spark's ROUND(x, 0): halves away from zero."""
    return int(Decimal(str(value)).quantize(Decimal(1), rounding=ROUND_HALF_UP))
