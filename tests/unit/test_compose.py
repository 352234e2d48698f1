"""docker-compose.yml, the Dockerfile, .env.example and the tested settings stay in step; the
deploy helpers (compose -> local settings, roles, file views) behave. No Docker needed."""

from __future__ import annotations

import importlib.util
import re
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
COMPOSE_TEXT = (REPO / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
SERVICES = COMPOSE["services"]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
DOCKERFILE = (REPO / "Dockerfile").read_text()


def _load(relpath: str):
    path = REPO / relpath
    spec = importlib.util.spec_from_file_location("deploy_" + path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


compose_env = _load("deploy/compose_env.py")


def _pin(package: str) -> str:
    for dep in PYPROJECT["project"]["dependencies"]:
        name, _, version = dep.partition("==")
        if name.strip().lower() == package:
            return version.strip()
    raise AssertionError(f"{package} is not pinned in pyproject.toml")


def _env(service: str = "airflow-worker") -> dict[str, str]:
    return compose_env.service_environment(COMPOSE, service)


AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
}


# -- image and versions -------------------------------------------------------------------------


def test_image_is_the_pinned_airflow_on_the_pinned_python():
    python = re.search(r">=(\d+\.\d+)", PYPROJECT["project"]["requires-python"]).group(1)
    (base,) = re.findall(r"^FROM\s+(\S+)", DOCKERFILE, re.M)
    assert base == f"apache/airflow:{_pin('apache-airflow')}-python{python}"


def test_every_airflow_service_runs_the_project_image():
    version = PYPROJECT["project"]["version"]
    for name in [*AIRFLOW_SERVICES, "airflow-init"]:
        assert SERVICES[name]["image"] == f"mhsds-pipeline:{version}", name


def test_databases_and_broker_images():
    for name in ("airflow-db", "clinical-db", "warehouse-db"):
        assert SERVICES[name]["image"] == "postgres:15", name  # the major the integration test checks
    assert SERVICES["redis"]["image"].startswith("redis:7")


def test_image_installs_the_plugin_auth_config_and_deploy_scripts():
    assert "COPY --chown=airflow:root deploy/airflow_plugins/ /opt/airflow/plugins/" in DOCKERFILE
    assert _env()["AIRFLOW__FAB__CONFIG_FILE"] == "/opt/airflow/webserver_config.py"
    assert "deploy/webserver_config.py /opt/airflow/webserver_config.py" in DOCKERFILE
    assert "COPY --chown=airflow:root deploy /opt/mhsds/deploy" in DOCKERFILE
    assert SERVICES["airflow-init"]["entrypoint"][-1] == "/opt/mhsds/deploy/airflow-init.sh"
    assert (REPO / "deploy" / "airflow-init.sh").exists()
    (init_mount,) = [v for v in SERVICES["clinical-db"]["volumes"] if "initdb" in v]
    assert (REPO / init_mount.split(":")[0]).exists()


# -- services -----------------------------------------------------------------------------------


def test_airflow_3_components_with_health_checks():
    for name, command in AIRFLOW_SERVICES.items():
        service = SERVICES[name]
        assert service["command"] == command, name
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
        assert service["depends_on"]["airflow-init"] == {"condition": "service_completed_successfully"}
    for name in ("airflow-db", "clinical-db", "warehouse-db", "redis"):
        assert SERVICES[name]["healthcheck"]["test"], name
    assert "8080:8080" in SERVICES["airflow-apiserver"]["ports"]


def test_outputs_and_logs_are_volumes_and_read_only_for_the_api_server():
    for name in AIRFLOW_SERVICES:
        mounts = SERVICES[name]["volumes"]
        assert any(m.startswith("airflow-logs:") for m in mounts), name
    assert "mhsds-output:/output:ro" in SERVICES["airflow-apiserver"]["volumes"]
    assert "mhsds-output:/output" in SERVICES["airflow-worker"]["volumes"]
    assert "mhsds-data:/data" in SERVICES["airflow-worker"]["volumes"]
    assert set(COMPOSE["volumes"]) >= {"mhsds-data", "mhsds-output", "airflow-logs", "airflow-db"}


def test_databases_and_broker_are_not_reachable_from_outside():
    assert COMPOSE["networks"]["backend"]["internal"] is True
    for name in ("airflow-db", "clinical-db", "warehouse-db", "redis"):
        assert SERVICES[name]["networks"] == ["backend"] and "ports" not in SERVICES[name], name


# -- settings -----------------------------------------------------------------------------------


def test_celery_executor_redis_broker_and_postgres_result_backend():
    env = _env()
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert re.fullmatch(r"redis://redis:6379/\d+", env["AIRFLOW__CELERY__BROKER_URL"])
    meta = re.fullmatch(
        r"postgresql\+psycopg2://(.+)@airflow-db:5432/airflow", env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    )
    backend = re.fullmatch(
        r"db\+postgresql\+psycopg2://(.+)@airflow-db:5432/airflow", env["AIRFLOW__CELERY__RESULT_BACKEND"]
    )
    assert meta and backend and meta.group(1) == backend.group(1)
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert env["AIRFLOW__CORE__AUTH_MANAGER"] == (
        "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
    )


def test_every_airflow_service_gets_the_same_settings():
    reference = _env("airflow-worker")
    for name in [*AIRFLOW_SERVICES, "airflow-init"]:
        env = _env(name)
        missing = {k for k in reference if k not in env and k != "DUMB_INIT_SETSID"}
        assert not missing, (name, missing)


def test_pipeline_settings_are_names_the_code_reads():
    code = "\n".join(
        p.read_text()
        for p in [*REPO.glob("plugins/mhsds_pipeline/**/*.py"), *REPO.glob("deploy/**/*.py")]
        if p.is_file()
    )
    code += (REPO / "dbt_project" / "profiles.yml").read_text()
    unknown = [k for k in _env() if k.startswith("MHSDS_") and k not in code]
    assert unknown == [], f"compose sets variables nothing reads: {unknown}"
    env = _env()
    assert env["MHSDS_WAREHOUSE_TARGET"] == "postgres"
    assert env["MHSDS_PG_HOST"] == "warehouse-db" and env["MHSDS_PG_DBNAME"] == "mhsds_warehouse"
    any_pw = r"\$\{MHSDS_SOURCE_PASSWORD:\?[^}]*\}"
    assert re.fullmatch(
        rf"postgresql\+psycopg2://epr_reader:{any_pw}@clinical-db:5432/epr", env["MHSDS_SOURCE_URL"]
    )
    assert SERVICES["clinical-db"]["environment"]["MHSDS_SOURCE_USER"] == "epr_reader"


def test_alert_connection_ids_match_the_alerts_module():
    from mhsds_pipeline import alerts

    env = _env()
    for conn_id in (alerts.DEFAULT_SMTP_CONN_ID, alerts.DEFAULT_WEBHOOK_CONN_ID):
        assert f"AIRFLOW_CONN_{conn_id.upper()}" in env


def test_no_literal_secrets_in_compose():
    secretish = re.compile(r"PASSWORD|SECRET|FERNET|JWT|PSEUDO_KEY|AIRFLOW_CONN_")
    for name in SERVICES:
        for key, value in compose_env.service_environment(COMPOSE, name).items():
            if secretish.search(key):
                assert value.startswith("${") and value.endswith("}"), f"{name}.{key} must come from .env"
            for m in re.finditer(r"://[^:/@\s]+:([^@\s]+)@", value):
                assert m.group(1).startswith("${"), f"{name}.{key} has a literal password"


def test_env_example_declares_every_variable_compose_uses():
    declared = {
        line.split("=", 1)[0]
        for line in (REPO / ".env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    used = compose_env.variables(COMPOSE_TEXT)
    required = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*):\?", COMPOSE_TEXT))
    assert required <= declared, f"required by compose, missing from .env.example: {required - declared}"
    optional = used - declared - {"MHSDS_DEMO_SCALE"}
    assert optional == set(), f"used by compose, not in .env.example: {optional}"


# -- compose -> local settings (what the integration test runs with) ------------------------------


def _fake_secrets() -> dict[str, str]:
    return {name: f"test-{name.lower()}" for name in compose_env.variables(COMPOSE_TEXT)}


def test_local_env_keeps_compose_settings_and_changes_only_addresses():
    databases = {"airflow-db": "it_airflow", "clinical-db": "it_epr", "warehouse-db": "it_wh"}
    env = compose_env.local_env(
        _fake_secrets(),
        databases=databases,
        users={"clinical-db": "it_reader"},
        api_server="127.0.0.1:18080",
        paths={"/opt/mhsds": "/repo", "/output": "/tmp/out", "/data": "/tmp/data"},
    )
    compose = _env()
    assert set(env) == set(compose)
    assert env["AIRFLOW__CORE__EXECUTOR"] == compose["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CORE__AUTH_MANAGER"] == compose["AIRFLOW__CORE__AUTH_MANAGER"]
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://127.0.0.1:6379/0"
    pw = "test-airflow_db_password"
    assert (
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        == f"postgresql+psycopg2://postgres:{pw}@127.0.0.1:5432/it_airflow"
    )
    assert (
        env["AIRFLOW__CELERY__RESULT_BACKEND"]
        == f"db+postgresql+psycopg2://postgres:{pw}@127.0.0.1:5432/it_airflow"
    )
    src_pw = "test-mhsds_source_password"
    assert env["MHSDS_SOURCE_URL"] == f"postgresql+psycopg2://it_reader:{src_pw}@127.0.0.1:5432/it_epr"
    assert (env["MHSDS_PG_HOST"], env["MHSDS_PG_DBNAME"], env["MHSDS_PG_USER"]) == (
        "127.0.0.1",
        "it_wh",
        "postgres",
    )
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18080/execution/"
    assert (env["MHSDS_HOME"], env["MHSDS_OUTPUT_DIR"], env["MHSDS_DATA_DIR"]) == (
        "/repo",
        "/tmp/out",
        "/tmp/data",
    )
    assert env["AIRFLOW__CORE__FERNET_KEY"] == "test-airflow__core__fernet_key"


def test_interpolation_follows_compose_rules():
    i = compose_env.interpolate
    assert i("${A:-x}", {}) == "x" and i("${A:-x}", {"A": ""}) == "x" and i("${A-x}", {"A": ""}) == ""
    assert i("$$HOSTNAME ${B}", {"B": "b"}) == "$HOSTNAME b"
    with pytest.raises(compose_env.MissingVariable, match="set in .env"):
        i("${A:?set in .env}", {"A": ""})


# -- roles, auth config and file views ----------------------------------------------------------


roles = _load("deploy/roles.py")


def test_role_definitions():
    defs = {name: set(perms) for name, perms in roles.role_definitions().items()}
    assert set(defs) == {"DataEngineer", "IGReviewer", "FinanceReader"}
    write = {"can_create", "can_edit", "can_delete"}
    ig = defs["IGReviewer"]
    assert {("can_read", "DAG Runs"), ("can_read", "Task Logs"), ("can_read", roles.RESOURCE_DATA_DOCS)} <= ig
    assert not {(a, r) for a, r in ig if a in write and r not in ("My Password", "My Profile")}
    assert ("can_read", "XComs") not in ig and ("can_read", roles.RESOURCE_MHIS_OUTPUTS) not in ig
    fin = defs["FinanceReader"]
    assert ("can_read", roles.RESOURCE_MHIS_OUTPUTS) in fin
    assert {r for _, r in fin} == {"Website", "My Profile", "My Password", roles.RESOURCE_MHIS_OUTPUTS}
    de = defs["DataEngineer"]
    assert {("can_create", "DAG Runs"), ("can_edit", "DAGs"), ("can_edit", "Task Instances")} <= de
    assert ("can_read", "Roles") not in de and ("can_edit", "Users") not in de


plugin = _load("deploy/airflow_plugins/mhsds_files.py")


def test_plugin_and_roles_name_the_same_resources():
    assert (plugin.RESOURCE_DATA_DOCS, plugin.RESOURCE_MHIS_OUTPUTS) == (
        roles.RESOURCE_DATA_DOCS,
        roles.RESOURCE_MHIS_OUTPUTS,
    )
    (app,) = plugin.MhsdsFilesPlugin.fastapi_apps
    assert app["url_prefix"] == "/mhsds-files"


def test_webserver_config_maps_groups_to_defined_roles(monkeypatch):
    monkeypatch.setenv("MHSDS_OAUTH_TENANT_ID", "tenant-guid")
    monkeypatch.setenv(
        "MHSDS_OAUTH_ROLE_GROUPS", "DataEngineer=sg-de;IGReviewer=sg-ig,sg-caldicott;FinanceReader=sg-fin"
    )
    cfg = _load("deploy/webserver_config.py")
    assert cfg.AUTH_ROLES_MAPPING == {
        "sg-de": ["DataEngineer"],
        "sg-ig": ["IGReviewer"],
        "sg-caldicott": ["IGReviewer"],
        "sg-fin": ["FinanceReader"],
    }
    assert {r for rs in cfg.AUTH_ROLES_MAPPING.values() for r in rs} <= set(roles.role_definitions())
    assert cfg.AUTH_ROLES_SYNC_AT_LOGIN and cfg.AUTH_USER_REGISTRATION_ROLE == "Public"
    monkeypatch.delenv("MHSDS_OAUTH_TENANT_ID")
    cfg = _load("deploy/webserver_config.py")
    assert cfg.AUTH_TYPE == 1 and cfg.AUTH_USER_REGISTRATION is False  # AUTH_DB


@pytest.fixture
def files_client(tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    out = tmp_path / "output"
    version = out / ".versions" / "2026-10" / "run1"
    (version / "mhis").mkdir(parents=True)
    (version / "mhis" / "mhis_spend_monthly.csv").write_text("category,spend\nA,1\n")
    (version / "data_docs" / "validations").mkdir(parents=True)
    (version / "data_docs" / "index.html").write_text("<h1>Data Docs</h1>")
    (version / "manifest.json").write_text("{}")
    (out / "2026-10").symlink_to(version)
    (out / "2026-09" / "mhis").mkdir(parents=True)
    (tmp_path / "secret.txt").write_text("outside")
    monkeypatch.setenv("MHSDS_OUTPUT_DIR", str(out))
    grants = {"fin": {plugin.RESOURCE_MHIS_OUTPUTS}, "ig": {plugin.RESOURCE_DATA_DOCS}}
    monkeypatch.setattr(plugin, "is_authorized", lambda user, resource: resource in grants[user])
    app = plugin.app
    app.dependency_overrides[plugin.current_user] = lambda: "fin"
    client = TestClient(app)
    yield client, app
    app.dependency_overrides.clear()


def test_file_views_follow_the_roles(files_client):
    client, app = files_client
    r = client.get("/mhis/")
    assert r.status_code == 200 and "2026-10/" in r.text and "2026-09/" in r.text
    r = client.get("/mhis/2026-10/mhis_spend_monthly.csv")
    assert r.status_code == 200 and r.text.startswith("category,spend")
    assert client.get("/data-docs/2026-10/").status_code == 403
    app.dependency_overrides[plugin.current_user] = lambda: "ig"
    assert client.get("/mhis/2026-10/mhis_spend_monthly.csv").status_code == 403
    r = client.get("/data-docs/2026-10/")
    assert r.status_code == 200 and "Data Docs" in r.text
    r = client.get("/data-docs/2026-10", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"].endswith("/data-docs/2026-10/")


def test_month_view_keeps_relative_links_and_each_shares_roles(files_client):
    """/month/<YYYY-MM>/<subdir>/: Data Docs and the IG page sit side by side as on disk, so the
    IG page's ../data_docs/ links resolve; each sub-directory keeps its own authorisation."""
    client, app = files_client
    out = plugin.output_root()
    (out / "2026-10" / "dq").mkdir()
    (out / "2026-10" / "dq" / "index.html").write_text('<a href="../data_docs/index.html">Data Docs</a>')
    app.dependency_overrides[plugin.current_user] = lambda: "ig"
    r = client.get("/month/2026-10/")
    assert r.status_code == 200 and "data_docs/" in r.text and "dq/" in r.text and "mhis/" not in r.text
    assert client.get("/month/2026-10/dq/index.html").status_code == 200
    assert client.get("/month/2026-10/data_docs/index.html").text == "<h1>Data Docs</h1>"
    assert client.get("/month/2026-10/mhis/mhis_spend_monthly.csv").status_code == 403
    assert client.get("/month/2026-10/.versions/").status_code == 404
    assert client.get("/month/2026-10/dq/../../secret.txt").status_code == 404
    assert client.get("/month/../secret.txt").status_code == 404
    app.dependency_overrides[plugin.current_user] = lambda: "fin"
    assert client.get("/month/2026-10/dq/index.html").status_code == 403
    assert client.get("/month/2026-10/mhis/mhis_spend_monthly.csv").status_code == 200
    names = {v["name"] for v in plugin.MhsdsFilesPlugin.external_views}
    assert {"IG page", "Data Docs", "dbt docs", "MHIS outputs"} <= names


def test_file_views_stay_inside_their_share(files_client):
    client, _ = files_client
    for path in (
        "/mhis/2026-10/../manifest.json",
        "/mhis/2026-10/%2e%2e/manifest.json",
        "/mhis/2026-10/..%2F..%2F..%2Fsecret.txt",
        "/mhis/.versions/2026-10/run1/mhis/mhis_spend_monthly.csv",
        "/mhis/2026-10/.hidden",
        "/mhis/2026-11/",
        "/mhis/latest/x",
    ):
        assert client.get(path).status_code == 404, path


def test_file_views_need_a_signed_in_user(tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    monkeypatch.setenv("MHSDS_OUTPUT_DIR", str(tmp_path))
    assert TestClient(plugin.app).get("/mhis/").status_code == 401
