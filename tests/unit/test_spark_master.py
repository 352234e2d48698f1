"""MHSDS_SPARK_MASTER: local masters run Spark in-process with that many cores, anything else is a
cluster (docker-compose's profile "spark")."""

from __future__ import annotations

import os

import pytest

from mhsds_pipeline.settings import ConfigurationError, read_settings
from mhsds_pipeline.spark_warehouse import local_cores

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("master", "cores"),
    [
        ("local", 1),
        ("local[2]", 2),
        ("local[8]", 8),
        ("local[*]", os.cpu_count()),
        ("spark://spark-master:7077", None),
    ],
)
def test_local_cores(master, cores):
    assert local_cores(master) == cores
    assert read_settings({"MHSDS_SPARK_MASTER": master}).spark_master == master


def test_default_is_two_local_cores_and_a_bad_master_is_refused():
    assert local_cores(read_settings({}).spark_master) == 2
    with pytest.raises(ConfigurationError, match="MHSDS_SPARK_MASTER='local\\[two\\]'"):
        read_settings({"MHSDS_SPARK_MASTER": "local[two]"})
