"""The source contract: the clinical system (the "EPR") as the pipeline reads it.

This is the room a trust edits to map its own EPR:

* :mod:`mhsds_pipeline.source.schema` declares the thirteen tables, their columns and types (one
  ``sqlalchemy.MetaData``) and their key columns (``EPR_KEYS``): what the extract reads from
  ``MHSDS_SOURCE_URL``, what the warehouse loads into ``raw_epr`` and what the dbt staging
  models map to MHSDS.
* :mod:`mhsds_pipeline.source.scope` is the period scoping: which rows of each table belong to a
  reporting period (``period_filters``), as the one SELECT per table the extract pushes down to
  the source (``scoped_queries``), and the columns the source's watermark is read from.
* :mod:`mhsds_pipeline.source.mapping` says which MHSDS tables each EPR table's rows become
  (``SOURCES``; ``LOOKUPS`` only enrich other rows), for the reconciliation invariant and the
  rule an unreadable cell is quarantined under.

Point the contract at your EPR here (or present your EPR through views in this shape) and the
rest of the pipeline follows; the scoping rules and the malformed-cell rules are described in
docs/source_contract.md. These modules import nothing of the pipeline beyond this package (and
``period`` for a type), so anything may import them without an import circle.

Production code imports from here and never from :mod:`mhsds_pipeline.synthetic`, the
generator of a synthetic EPR with planted defects, which builds its database from this schema
(it may import ``source``; ``source`` never imports it; ``tests/unit/test_package_rooms.py``
checks both). The generator's own scope (``synthetic/scope.py``) is a second, independent
implementation of the same rules in numpy, against which the tests check this one; the two
share no code.
"""
