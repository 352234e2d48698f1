"""Build the ODS organisation seed the v6 "live organisation" rules read.

NHS England's v6.0 rules check organisation codes against "national tables" (ODS): e.g.
MHS10110 "OrgIDComm is not for a current live organisation in national tables". SDCS holds those
tables; a trust running the rules before upload keeps a copy as the seed
``dbt_project/seeds/reference/ref_ods_organisations.csv`` (code, name, org_type, open_date,
close_date, source), which the rule engine's ``org_live`` check reads (docs/rules.md).

    python scripts/ods_seed.py                      # the synthetic trust's organisations
    python scripts/ods_seed.py --ods etr.csv epraccur.csv ...   # refresh from ODS files

ODS publishes its files (etr = NHS trusts, epraccur = GP practices, eccg/eccgsite = sub-ICB
locations, ...) at https://digital.nhs.uk/services/organisation-data-service/export-data-files/csv-downloads
as header-less CSVs: column 1 = code, 2 = name, 11 = open date (YYYYMMDD), 12 = close date.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))
SEED = REPO / "dbt_project" / "seeds" / "reference" / "ref_ods_organisations.csv"
COLUMNS = ("code", "name", "org_type", "open_date", "close_date", "source")


def synthetic() -> list[dict]:
    """Every organisation code the synthetic trust uses (invented codes of ODS shape)."""
    from mhsds_pipeline.synthetic import trust

    src = "synthetic trust (plugins/mhsds_pipeline/synthetic/trust.py)"
    rows = [{"code": "R1A", "name": "Synthetic mental health trust (provider)", "org_type": "NHS trust"}]
    rows += [
        {"code": c, "name": f"Synthetic sub-ICB location {c}", "org_type": "sub-ICB location"}
        for c in (trust.COMMISSIONER_HOME, *trust.COMMISSIONERS_OUT_OF_AREA)
    ]
    rows += [
        {"code": p, "name": f"Synthetic GP practice {p}", "org_type": "GP practice"}
        for group in trust.PRACTICES for p in group
    ]  # fmt: skip
    rows += [
        {"code": c, "name": n, "org_type": t}
        for c, n, t in (
            ("RXT", "Synthetic receiving NHS trust (mental health)", "NHS trust"),
            ("RLQ", "Synthetic receiving NHS trust (acute)", "NHS trust"),
            ("NQT", "Synthetic independent sector provider", "independent sector provider"),
            ("884", "Synthetic local authority (Herefordshire)", "local authority"),
            ("885", "Synthetic local authority (Worcestershire)", "local authority"),
            ("EE0001", "Synthetic school", "education establishment"),
            ("EE0002", "Synthetic college", "education establishment"),
        )
    ]
    # closed organisations: in national tables but no longer live (the rules reject them)
    rows += [
        {"code": "05T", "name": "Synthetic closed sub-ICB location", "org_type": "sub-ICB location",
         "close_date": "2022-06-30"},
        {"code": "M81999", "name": "Synthetic closed GP practice", "org_type": "GP practice",
         "close_date": "2023-03-31"},
    ]  # fmt: skip
    for r in rows:
        r.setdefault("open_date", "2000-01-01")
        r.setdefault("close_date", "")
        r["source"] = src
    return rows


def from_ods(paths: list[Path]) -> list[dict]:
    rows = []
    for path in paths:
        with path.open(newline="", encoding="latin-1") as fh:
            for rec in csv.reader(fh):
                if len(rec) < 12 or not rec[0].strip():
                    continue

                def iso(v: str) -> str:
                    v = v.strip()
                    return f"{v[:4]}-{v[4:6]}-{v[6:8]}" if len(v) == 8 else ""

                rows.append({"code": rec[0].strip().upper(), "name": rec[1].strip(), "org_type": path.stem,
                             "open_date": iso(rec[10]), "close_date": iso(rec[11]), "source": f"ODS {path.name}"})  # fmt: skip
    return rows


def write(rows: list[dict], path: Path = SEED) -> None:
    seen: dict[str, dict] = {}
    for r in rows:
        seen.setdefault(r["code"], r)
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        for code in sorted(seen):
            w.writerow({k: seen[code].get(k, "") for k in COLUMNS})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ods", nargs="+", type=Path, help="ODS CSV files to build the seed from")
    ap.add_argument("--out", type=Path, default=SEED)
    args = ap.parse_args(argv)
    rows = from_ods(args.ods) if args.ods else synthetic()
    write(rows, args.out)
    print(f"{args.out}: {len({r['code'] for r in rows})} organisations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
