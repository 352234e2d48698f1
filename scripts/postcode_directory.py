"""Turn the ONS Postcode Directory (ONSPD) or NSPL CSV into the residence seed.

    python scripts/postcode_directory.py NSPL_FEB_2026_UK.csv \\
        --names LAD_names_and_codes.csv --out dbt_project/seeds/derived/ref_postcode_la.csv

Writes one ``unit`` row per live postcode (terminated postcodes, with ``doterm`` set, are left
out): postcode without spaces, the local authority district (``laua``, or the release's
``ladNNcd`` column) and the country (``ctry``). ``--names`` (optional) is ONS's LAD names and
codes CSV (first column the code, second the name). ``--keep-districts`` appends the current
seed's ``district`` rows as a fallback for postcodes not in the directory.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

COLUMNS = ["postcode", "level", "la_code", "la_name", "country_code"]


def _pick(header: list[str], *names: str, prefix: str | None = None) -> str:
    lowered = {h.lower(): h for h in header}
    for name in names:
        if name in lowered:
            return lowered[name]
    if prefix:
        matches = sorted(h for h in lowered if h.startswith(prefix) and h.endswith("cd"))
        if matches:
            return lowered[matches[-1]]
    raise SystemExit(f"the directory has no {' / '.join(names)} column (header: {', '.join(header[:12])}...)")


def convert(directory: Path, names: Path | None, out: Path, keep_districts: bool = False) -> int:
    la_names: dict[str, str] = {}
    if names:
        with open(names, newline="", encoding="utf-8-sig") as fh:
            rows = csv.reader(fh)
            next(rows, None)
            la_names = {r[0]: r[1] for r in rows if len(r) >= 2}
    kept = []
    if keep_districts and out.exists():
        with open(out, newline="") as fh:
            kept = [r for r in csv.DictReader(fh) if r["level"] == "district"]
    n = 0
    tmp = out.with_suffix(".tmp")
    with open(directory, newline="", encoding="utf-8-sig") as src, open(tmp, "w", newline="") as dst:
        reader = csv.DictReader(src)
        header = reader.fieldnames or []
        pcds = _pick(header, "pcds", "pcd")
        laua = _pick(header, "laua", prefix="lad")
        ctry = _pick(header, "ctry", prefix="ctry")
        doterm = next((h for h in header if h.lower() == "doterm"), None)
        writer = csv.DictWriter(dst, fieldnames=COLUMNS)
        writer.writeheader()
        for row in reader:
            if doterm and row[doterm].strip():
                continue
            postcode = row[pcds].replace(" ", "").upper()
            if not postcode:
                continue
            code = row[laua].strip()
            writer.writerow(
                {
                    "postcode": postcode,
                    "level": "unit",
                    "la_code": code,
                    "la_name": la_names.get(code, ""),
                    "country_code": row[ctry].strip(),
                }
            )
            n += 1
        writer.writerows(kept)
    tmp.replace(out)
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("directory", type=Path, help="ONSPD / NSPL CSV")
    ap.add_argument("--names", type=Path, help="ONS LAD names and codes CSV")
    ap.add_argument("--out", type=Path, default=Path("dbt_project/seeds/derived/ref_postcode_la.csv"))
    ap.add_argument(
        "--keep-districts", action="store_true", help="keep the seed's district rows as a fallback"
    )
    ns = ap.parse_args(argv)
    n = convert(ns.directory, ns.names, ns.out, ns.keep_districts)
    print(f"{n:,} live postcodes written to {ns.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
