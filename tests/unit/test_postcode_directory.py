"""The ONS Postcode Directory converter writes the residence seed the derived fields read."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location(
    "postcode_directory", REPO / "scripts" / "postcode_directory.py"
)
postcode_directory = importlib.util.module_from_spec(spec)
spec.loader.exec_module(postcode_directory)


def test_live_postcodes_become_unit_rows_with_district_fallback(tmp_path):
    nspl = tmp_path / "nspl.csv"
    nspl.write_text(
        "pcd,pcd2,pcds,dointr,doterm,usertype,laua,ctry\n"
        "WR1 1AB,WR1  1AB,WR1 1AB,198001,,0,E07000237,E92000001\n"
        "LD8 2AB,LD8  2AB,LD8 2AB,198001,,0,W06000023,W92000004\n"
        "WR1 9ZZ,WR1  9ZZ,WR1 9ZZ,198001,200012,0,E07000237,E92000001\n"  # terminated
    )
    names = tmp_path / "names.csv"
    names.write_text("LAD24CD,LAD24NM\nE07000237,Worcester\nW06000023,Powys\n")
    out = tmp_path / "ref_postcode_la.csv"
    out.write_text(
        "postcode,level,la_code,la_name,country_code\nHR1,district,E06000019,Herefordshire,E92000001\n"
    )
    assert postcode_directory.convert(nspl, names, out, keep_districts=True) == 2
    rows = list(csv.DictReader(open(out)))
    assert rows == [
        {
            "postcode": "WR11AB",
            "level": "unit",
            "la_code": "E07000237",
            "la_name": "Worcester",
            "country_code": "E92000001",
        },
        {
            "postcode": "LD82AB",
            "level": "unit",
            "la_code": "W06000023",
            "la_name": "Powys",
            "country_code": "W92000004",
        },
        {
            "postcode": "HR1",
            "level": "district",
            "la_code": "E06000019",
            "la_name": "Herefordshire",
            "country_code": "E92000001",
        },
    ]


def test_a_directory_without_a_local_authority_column_is_refused(tmp_path):
    nspl = tmp_path / "nspl.csv"
    nspl.write_text("pcds,ctry\nWR1 1AB,E92000001\n")
    with pytest.raises(SystemExit, match="laua"):
        postcode_directory.convert(nspl, None, tmp_path / "out.csv")
