"""What every submission module shares: the manifest's name and reader, and the refusal types.

The lowest module of the subpackage (standard library only, imports nothing of the pipeline), so
the dependencies run one way: ``package`` -> ``checks`` / ``diff`` -> ``manifest`` / ``idb``.
``package`` re-exports these names; ``from mhsds_pipeline.submission.package import
SubmissionError`` keeps working.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

MANIFEST_NAME = "submission_manifest.json"


def read_manifest(package_dir: Path) -> dict:
    return json.loads((package_dir / MANIFEST_NAME).read_text())


@dataclass(frozen=True)
class CheckFailure:
    """One failed pre-submission check. ``table`` is None for period-level checks."""

    period: str
    table: str | None
    check: str
    message: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.table or '(period)'}: {self.message}"

    def as_dict(self) -> dict:
        return asdict(self)


class SubmissionError(RuntimeError):
    """The package for a period was refused; nothing was written. ``failures`` lists every
    failed check (period, table, check, message)."""

    def __init__(self, period: str, failures: list[CheckFailure], inputs: dict | None = None):
        self.period = str(period)
        self.failures = list(failures)
        self.inputs = inputs or {}
        lines = "\n".join(f"  - {f}" for f in self.failures)
        super().__init__(
            f"MHSDS {self.period}: submission package refused, {len(self.failures)} pre-submission "
            f"check(s) failed (SDCS would reject the file). Nothing was written.\n{lines}"
        )

    @property
    def table(self) -> str | None:
        return self.failures[0].table if self.failures else None

    @property
    def check(self) -> str | None:
        return self.failures[0].check if self.failures else None
