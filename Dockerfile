# Production image: Airflow 3.3.2 on Python 3.11 with the pipeline package and its pinned stack.
# The tag must match the apache-airflow pin in pyproject.toml (tests/unit/test_compose.py checks).
FROM apache/airflow:3.3.2-python3.11

# Writable mount points owned by the airflow user, so fresh named volumes inherit the ownership.
USER root
RUN mkdir -p /data /output /opt/mhsds \
 && chown -R airflow:root /data /output /opt/mhsds \
 && chmod -R g+rwX /data /output /opt/mhsds
USER airflow

# Dependencies first (cached unless the pins change), then the code.
COPY --chown=airflow:root pyproject.toml requirements.lock /opt/mhsds/
COPY --chown=airflow:root plugins /opt/mhsds/plugins
RUN pip install --no-cache-dir -c /opt/mhsds/requirements.lock -e /opt/mhsds \
 && python -c "import asyncpg, airflow.providers.celery.executors.celery_executor_utils, mhsds_pipeline"
# ^ fail the build, not the first task: Airflow 3 on PostgreSQL needs asyncpg, and the Celery
#   executor must import against the pinned celery (celery 5.7.0 broke provider 3.26.0).

COPY --chown=airflow:root dags /opt/airflow/dags
COPY --chown=airflow:root dbt_project /opt/mhsds/dbt_project
COPY --chown=airflow:root expectations /opt/mhsds/expectations
COPY --chown=airflow:root deploy /opt/mhsds/deploy
# The Data Docs / MHIS file views (Airflow plugin) and the FAB auth configuration.
COPY --chown=airflow:root deploy/airflow_plugins/ /opt/airflow/plugins/
COPY --chown=airflow:root deploy/webserver_config.py /opt/airflow/webserver_config.py

ENV MHSDS_HOME=/opt/mhsds \
    MHSDS_DATA_DIR=/data \
    MHSDS_OUTPUT_DIR=/output
