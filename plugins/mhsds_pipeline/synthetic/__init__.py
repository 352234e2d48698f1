"""The synthetic EPR: a deterministic generator of a trust's clinical system, with planted defects.

Everything here exists only to make synthetic data to run and test the pipeline against:
reference data of an invented trust (``trust``) and the code lists and seeds its rows draw from
(``codes``), the slow-moving spine of patients and referrals (``spine``) with the spells, ward
stays, other teams and diagnoses hanging off them (``referral_rows``), monthly activity
(``activity``), the planted data-quality defects and their ground truth (``defects``, which runs
the planters of ``defects_values``, ``defects_dates``, ``defects_orphans`` and
``defects_hostile`` over the rules, rates and log of ``defects_rules``), an independent numpy
implementation of the extract scope for ``expected_keys.parquet`` (``scope``), the bulk loader
(``loader``) and ``generator`` which ties them together (``mhsds generate``).

It writes into the tables of the source contract (:mod:`mhsds_pipeline.source`) and may import
it, never the reverse. Production modules must not import this package: only the CLI's
data-generating commands, the synthetic finance extract (``finance/generator.py``,
``finance/fixtures.py``), tests and ``scripts/benchmark.py`` do
(``tests/unit/test_package_rooms.py`` checks it).
"""
