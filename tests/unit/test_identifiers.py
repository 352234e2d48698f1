"""Identifier validators: NHS number (Modulus 11), SNOMED CT ids (partition, Verhoeff), postcodes."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from mhsds_pipeline.identifiers import (
    DEFAULT_POSTCODES,
    DUMMY_NHS_NUMBERS,
    is_default_postcode,
    nhs_number_check_digit,
    nhs_number_is_valid,
    normalise_postcode,
    postcode_is_valid,
    sctid_is_valid,
    sctid_partition,
    verhoeff_check_digit,
    verhoeff_is_valid,
)

pytestmark = pytest.mark.unit

SEEDS = Path(__file__).resolve().parents[2] / "dbt_project" / "seeds" / "reference"


# --- NHS number -------------------------------------------------------------------------------
# Verdicts on edge-case values live in one table, tests/unit/test_sql_identifiers.py EDGE_CASES,
# where the Python and the SQL checks are held to the same expected verdict. Here: the helper
# functions, Python-only options and input types, and properties over many values.


def test_worked_example_943_476_5919_check_digit():
    # Data Dictionary example: weighted sum 299, remainder 2, check digit 9.
    assert nhs_number_check_digit("943476591") == 9


def test_exactly_one_check_digit_is_right():
    assert [d for d in "0123456789" if nhs_number_is_valid("943476591" + d)] == ["9"]


def test_separators_only_with_opt_in():
    # The stored value must be bare digits (EDGE_CASES); people may type separators.
    assert nhs_number_is_valid("943 476 5919", allow_separators=True)
    assert nhs_number_is_valid("943-476-5919", allow_separators=True)
    assert not nhs_number_is_valid("943 476 5918", allow_separators=True)
    assert not nhs_number_is_valid("111 111 1111", allow_separators=True)


def test_check_digit_ten_means_no_valid_number():
    bodies = [f"999{n:06d}" for n in range(200)]
    tens = [b for b in bodies if nhs_number_check_digit(b) is None]
    assert tens, "some 999 bodies must have check value 10"
    for body in tens[:5]:
        assert not any(nhs_number_is_valid(body + str(d)) for d in range(10))


def test_some_dummies_pass_the_arithmetic_alone():
    # Why the dummy list exists: the checksum alone accepts these.
    assert nhs_number_check_digit("999999999") == 9
    assert nhs_number_check_digit("000000000") == 0
    assert len(DUMMY_NHS_NUMBERS) == 10


@pytest.mark.parametrize("value", [9434765919, 9434765919.0, b"9434765919", ["9434765919"]])
def test_non_string_nhs_numbers_are_invalid(value):
    # Python-only: an int would silently lose a leading zero. (The warehouse judges text.)
    assert not nhs_number_is_valid(value)


def test_check_digit_rejects_bad_bodies():
    assert nhs_number_check_digit("12345678") is None
    assert nhs_number_check_digit("12345678X") is None
    assert nhs_number_check_digit(123456789) is None  # type: ignore[arg-type]


# --- Verhoeff / SCTID -------------------------------------------------------------------------


def test_verhoeff_check_digit_and_partition_helpers():
    assert verhoeff_check_digit("2229800") == "6"  # 22298006, myocardial infarction
    assert verhoeff_is_valid("22298006") and not verhoeff_is_valid("22298007")
    assert sctid_partition("22298060") == "06"
    assert sctid_partition("979711000000105") == "10"
    assert sctid_partition("12") is None


def test_verhoeff_catches_single_digit_errors_and_transpositions():
    code = "1111811000000109"
    for i in range(len(code)):
        for d in "0123456789":
            if d != code[i]:
                assert not verhoeff_is_valid(code[:i] + d + code[i + 1 :])
    for i in range(len(code) - 1):
        if code[i] != code[i + 1]:
            swapped = code[:i] + code[i + 1] + code[i] + code[i + 2 :]
            assert not verhoeff_is_valid(swapped)


@pytest.mark.parametrize("value", [22298006, 22298006.0, b"22298006"])
def test_sctid_rejects_non_string_values(value):
    # Python-only: callers pass text (as_text turns a warehouse integer into its digits first).
    assert not sctid_is_valid(value)
    assert not verhoeff_is_valid(value)


def test_verhoeff_check_digit_rejects_non_digits():
    with pytest.raises(ValueError):
        verhoeff_check_digit("12a")


@pytest.mark.parametrize("seed", ["ref_snomed_intervention_valueset.csv", "ref_assessment_tools.csv"])
def test_every_seed_code_is_a_valid_concept_id(seed):
    with open(SEEDS / seed, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows
    for row in rows:
        assert sctid_is_valid(row["concept_id"]), row


# --- postcodes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["WR1 2AB", "wr1 2ab", " HR4  9DX ", "DY10 1AA", "B60 3AB", "EC1A 1BB", "W1A 0AX", "M1 1AE", "ZZ99 3VZ"],
)
def test_valid_postcode_patterns(value):
    assert postcode_is_valid(value)


@pytest.mark.parametrize(
    "value",
    [
        "WR12AB",
        "WR1 AB",
        "WR 2AB",
        "WR1 2A",
        "1WR 2AB",
        "WR123 2AB",
        "WR1 2ABC",
        "",
        None,
        12345,
        "WR1\n2AB extra",
    ],
)
def test_invalid_postcode_patterns(value):
    assert not postcode_is_valid(value)


def test_defaults_pass_the_pattern_but_are_defaults():
    for code in ("ZZ99 3VZ", "ZZ99 3WZ", "ZZ99 3CZ"):
        assert code in DEFAULT_POSTCODES
        assert postcode_is_valid(code)
        assert is_default_postcode(code)
    assert is_default_postcode(" zz99  3vz ")
    assert is_default_postcode("ZZ99 4QZ")  # any ZZ99 pseudo-postcode
    assert not is_default_postcode("WR1 2AB")
    assert not is_default_postcode(None)


def test_normalise_postcode():
    assert normalise_postcode("  wr1\t 2ab ") == "WR1 2AB"
    assert normalise_postcode("WR12AB") == "WR12AB"  # no space invented
    assert normalise_postcode(None) is None
