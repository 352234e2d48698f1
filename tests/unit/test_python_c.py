"""`python -c` must run code that imports GX (and with it pyspark.sql.connect).

pyspark 4.3 takes a ``python -c`` process (a ``__main__`` without file or spec) for a doctest run
and exits it with status 0 when Spark Connect's requirements are missing ("Skipping doctests"),
so a one-line command that imports GX silently did nothing. The pinned grpcio-status and
zstandard satisfy the check; this test fails if they go missing again.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit


def test_python_c_importing_gx_runs_to_the_end():
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import great_expectations, pyspark.sql.connect.dataframe; print('reached the end')",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "reached the end" in done.stdout, done.stdout + done.stderr[-2000:]
