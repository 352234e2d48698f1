"""The source contract: the clinical system (the "EPR") as the pipeline reads it.

This is the room a trust edits to map its own EPR. :mod:`mhsds_pipeline.source.schema` declares
the twelve tables and their columns and types (one ``sqlalchemy.MetaData``) that the extract
reads, period by period, from ``MHSDS_SOURCE_URL``, that the warehouse loads into ``raw_epr``
and that the dbt staging models map to MHSDS. Point the contract at your EPR here (or present
your EPR through views in this shape) and the rest of the pipeline follows; the period scoping
rules (which rows belong to a reporting period) and the malformed-cell rules are described in
docs/source_contract.md.

Production code imports from here and never from :mod:`mhsds_pipeline.synthetic`, the
generator of a synthetic EPR with planted defects, which builds its database from this schema
(it may import ``source``; ``source`` never imports it; ``tests/unit/test_package_rooms.py``
checks both).
"""
