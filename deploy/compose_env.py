"""docker-compose.yml's Airflow settings, mapped onto services on this machine (no Docker).

The production integration test (tests/integration/test_production.py) and
``scripts/prod_env.sh`` take their environment from here, so what is tested is the compose
file's own settings: executor, auth manager, broker and result backend forms, connection ids,
pipeline variables. Only addresses change: compose service names become 127.0.0.1, database
names become throwaway ones, container paths become local directories. Secrets are supplied by
the caller (the test generates them) and interpolated exactly as compose would.

    eval "$(python deploy/compose_env.py)"   # export lines; secrets from the environment (.env)
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yml"

#: Compose services whose address is rewritten, and what they are.
PG_SERVICES = ("airflow-db", "clinical-db", "warehouse-db")

_VAR = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)


class MissingVariable(KeyError):
    """A ``${VAR:?...}`` compose would refuse to start without."""


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose variable interpolation: ``$$``, ``$VAR``, ``${VAR}``, ``${VAR:-d}``, ``${VAR-d}``,
    ``${VAR:?err}``, ``${VAR?err}``."""

    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group("name") or m.group("bare")
        op, arg = m.group("op"), m.group("arg") or ""
        current = env.get(name)
        unset_or_empty = current is None or current == ""
        if op == ":-":
            return arg if unset_or_empty else current
        if op == "-":
            return arg if current is None else current
        if op == ":?":
            if unset_or_empty:
                raise MissingVariable(f"{name}: {arg}")
            return current
        if op == "?":
            if current is None:
                raise MissingVariable(f"{name}: {arg}")
            return current
        return current or ""

    return _VAR.sub(sub, value)


def variables(text: str) -> set[str]:
    """Every variable a compose file interpolates."""
    return {m.group("name") or m.group("bare") for m in _VAR.finditer(text) if m.group(0) != "$$"}


def load_compose(path: Path = COMPOSE_FILE) -> dict:
    return yaml.safe_load(path.read_text())


def service_environment(compose: dict, service: str) -> dict[str, str]:
    """A service's ``environment`` (anchors and merge keys resolved by the YAML loader)."""
    env = compose["services"][service].get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


_PG_URL = re.compile(
    r"^(?P<scheme>[a-z0-9+]*postgres[a-z0-9+]*)://(?P<user>[^:@/]+)(?::(?P<pw>[^@/]*))?@"
    r"(?P<host>[^:/]+)(?::(?P<port>\d+))?/(?P<db>[^?]+)$"
)


def localise(
    env: Mapping[str, str],
    *,
    databases: Mapping[str, str],
    users: Mapping[str, str] | None = None,
    pg_host: str = "127.0.0.1",
    pg_port: int = 5432,
    pg_user: str = "postgres",
    redis: str = "127.0.0.1:6379",
    api_server: str = "127.0.0.1:8080",
    paths: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Rewrite compose addresses to local ones; everything else is kept as compose has it.

    ``databases``: compose PG service -> local database name; ``users``: service -> login
    (default ``pg_user``); ``paths``: container path prefix -> local path (longest first).
    """
    users = dict(users or {})
    out: dict[str, str] = {}
    for key, value in env.items():
        m = _PG_URL.match(value)
        if m and m["host"] in PG_SERVICES:
            service = m["host"]
            user = users.get(service, pg_user)
            pw = f":{m['pw']}" if m["pw"] else ""
            value = f"{m['scheme']}://{user}{pw}@{pg_host}:{pg_port}/{databases[service]}"
        value = value.replace("redis://redis:6379", f"redis://{redis}")
        value = value.replace("http://airflow-apiserver:8080", f"http://{api_server}")
        out[key] = value
    if out.get("MHSDS_PG_HOST") in PG_SERVICES:
        service = out["MHSDS_PG_HOST"]
        out.update(
            MHSDS_PG_HOST=pg_host,
            MHSDS_PG_PORT=str(pg_port),
            MHSDS_PG_USER=users.get(service, pg_user),
            MHSDS_PG_DBNAME=databases[service],
        )
    for prefix, local in sorted((paths or {}).items(), key=lambda kv: -len(kv[0])):
        for key, value in out.items():
            if value == prefix or value.startswith(prefix.rstrip("/") + "/"):
                out[key] = local + value[len(prefix) :]
    return out


def local_env(
    secrets: Mapping[str, str],
    *,
    service: str = "airflow-worker",
    compose_path: Path = COMPOSE_FILE,
    **localise_kwargs,
) -> dict[str, str]:
    """The environment ``service`` gets from compose, interpolated with ``secrets`` and localised."""
    compose = load_compose(compose_path)
    raw = service_environment(compose, service)
    interpolated = {k: interpolate(v, secrets) for k, v in raw.items()}
    return localise(interpolated, **localise_kwargs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--service", default="airflow-worker")
    parser.add_argument("--airflow-db", default="airflow")
    parser.add_argument("--clinical-db", default="epr")
    parser.add_argument("--warehouse-db", default="mhsds_warehouse")
    parser.add_argument("--api-server", default="127.0.0.1:8080")
    ns = parser.parse_args(argv)
    env = local_env(
        os.environ,
        service=ns.service,
        databases={
            "airflow-db": ns.airflow_db,
            "clinical-db": ns.clinical_db,
            "warehouse-db": ns.warehouse_db,
        },
        api_server=ns.api_server,
        paths={
            "/opt/mhsds": str(REPO),
            "/opt/airflow/webserver_config.py": str(REPO / "deploy" / "webserver_config.py"),
            "/data": str(REPO / "data"),
            "/output": str(REPO / "output"),
        },
    )
    for key, value in sorted(env.items()):
        print(f"export {key}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except MissingVariable as exc:
        print(f"compose needs {exc}; set it in the environment (see .env.example)", file=sys.stderr)
        sys.exit(2)
