"""MHSDS monthly pipeline: extract, transform (dbt), quality, publish.

Importing this package is cheap: heavy libraries are imported by the modules that need them.
"""

__version__ = "0.1.0"
