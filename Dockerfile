# Production image: Airflow 3.3.2 on Python 3.11 with the pipeline package and its pinned stack.
FROM apache/airflow:3.3.2-python3.11
COPY --chown=airflow:root pyproject.toml requirements.lock /opt/mhsds/
COPY --chown=airflow:root plugins /opt/mhsds/plugins
RUN pip install --no-cache-dir -c /opt/mhsds/requirements.lock -e /opt/mhsds
COPY --chown=airflow:root dags /opt/airflow/dags
COPY --chown=airflow:root dbt_project /opt/mhsds/dbt_project
COPY --chown=airflow:root expectations /opt/mhsds/expectations
ENV MHSDS_HOME=/opt/mhsds
