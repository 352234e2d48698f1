"""Data-quality checks run by the quality gate: Great Expectations custom expectations and the
portable SQL they push down to the warehouse."""
