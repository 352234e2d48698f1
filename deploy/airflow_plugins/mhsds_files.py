"""Airflow plugin: the Data Docs and MHIS outputs, served read-only by the API server behind roles.

Both are files (Great Expectations Data Docs are a static HTML site; MHIS outputs are files
beside each month's submission), so rather than a second web server with its own users they
are served by the Airflow API server under ``/mhsds-files/`` and authorised with the same FAB
roles as everything else (``deploy/roles.py``):

* ``/mhsds-files/data-docs/<YYYY-MM>/...`` needs ``can_read`` on ``MHSDS Data Docs``
  (DataEngineer, IGReviewer): ``$MHSDS_OUTPUT_DIR/<YYYY-MM>/<MHSDS_DATA_DOCS_SUBDIR>``
  (default ``data_docs``), published with the month's outputs.
* ``/mhsds-files/mhis/<YYYY-MM>/...`` needs ``can_read`` on ``MHIS Outputs`` (DataEngineer,
  FinanceReader): ``$MHSDS_OUTPUT_DIR/<YYYY-MM>/<MHSDS_MHIS_SUBDIR>`` (default ``mhis``).

Without a period, each lists the months that have one. The browser's Airflow session cookie
or an ``Authorization: Bearer`` token (``POST /auth/token``) identifies the user. The volumes are mounted read-only into the API server
(docker-compose.yml); paths are resolved and must stay inside their root. Installed into
``$AIRFLOW_HOME/plugins`` by the Dockerfile.
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path
from typing import Annotated, Any

from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

#: Custom FAB resources (kept identical in deploy/roles.py).
RESOURCE_DATA_DOCS = "MHSDS Data Docs"
RESOURCE_MHIS_OUTPUTS = "MHIS Outputs"
URL_PREFIX = "/mhsds-files"
_PERIOD = re.compile(r"^\d{4}-\d{2}$")


def output_root() -> Path:
    return Path(os.environ.get("MHSDS_OUTPUT_DIR") or "/output")


#: share name in the URL -> (FAB resource, env var naming the per-period sub-directory, default)
SHARES = {
    "data-docs": (RESOURCE_DATA_DOCS, "MHSDS_DATA_DOCS_SUBDIR", "data_docs"),
    # the IG page (dq/index.html), DQMI report and SDCS-shaped reports: what IG reads with Data Docs
    "dq": (RESOURCE_DATA_DOCS, "MHSDS_DQ_SUBDIR", "dq"),
    # dbt's docs site of the run (models, lineage, tests)
    "dbt-docs": (RESOURCE_DATA_DOCS, "MHSDS_DBT_DOCS_SUBDIR", "dbt_docs"),
    "mhis": (RESOURCE_MHIS_OUTPUTS, "MHSDS_MHIS_SUBDIR", "mhis"),
}
TITLES = {"data-docs": "Data Docs", "dq": "IG page", "dbt-docs": "dbt docs", "mhis": "MHIS outputs"}


def share_subdir(share: str) -> str:
    _, env_var, default = SHARES[share]
    return os.environ.get(env_var) or default


async def current_user(request: Request) -> Any:
    """The signed-in Airflow user (Bearer token, else the UI's session cookie)."""
    from airflow.api_fastapi.core_api.security import bearer_scheme, get_user

    credentials = await bearer_scheme(request)
    return await get_user(request, None, credentials)


def is_authorized(user: Any, resource: str) -> bool:
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager().is_authorized_custom_view(method="GET", resource_name=resource, user=user)


CurrentUser = Annotated[Any, Depends(current_user)]


def _require(resource: str):
    async def dependency(user: CurrentUser) -> Any:
        if not is_authorized(user, resource):
            raise HTTPException(
                status_code=403, detail=f"Your Airflow role does not grant read on {resource}."
            )
        return user

    return dependency


def resolve_inside(root: Path, relative: str) -> Path:
    """``root/relative`` if it exists and stays inside ``root`` (no ``..``, no escaping symlink)."""
    base = root.resolve()
    parts = [p for p in relative.split("/") if p]
    if any(p.startswith(".") for p in parts):  # .versions, .staging, dotfiles, ..
        raise HTTPException(status_code=404, detail="Not found")
    target = base.joinpath(*parts).resolve()
    if target != base and base not in target.parents:
        raise HTTPException(status_code=404, detail="Not found")
    if not target.exists():
        raise HTTPException(status_code=404, detail="Not found")
    return target


def _listing(title: str, entries: list[tuple[str, str]]) -> HTMLResponse:
    items = "\n".join(
        f'<li><a href="{html.escape(href)}">{html.escape(label)}</a></li>' for href, label in entries
    )
    body = (
        f"<!doctype html><title>{html.escape(title)}</title><h1>{html.escape(title)}</h1><ul>\n{items}\n</ul>"
    )
    return HTMLResponse(body)


def _serve(root: Path, relative: str, request: Request, title: str):
    target = resolve_inside(root, relative)
    if target.is_dir():
        if not request.url.path.endswith("/"):
            return RedirectResponse(url=request.url.path + "/", status_code=307)
        index = target / "index.html"
        if index.is_file():
            return FileResponse(index)
        entries = sorted(
            (child.name + ("/" if child.is_dir() else ""), child.name)
            for child in target.iterdir()
            if not child.name.startswith(".")
        )
        return _listing(f"{title}: /{relative}", entries)
    return FileResponse(target)


DataDocsReader = Annotated[Any, Depends(_require(RESOURCE_DATA_DOCS))]
MhisReader = Annotated[Any, Depends(_require(RESOURCE_MHIS_OUTPUTS))]

app = FastAPI(title="MHSDS files", docs_url=None, redoc_url=None, openapi_url=None)


def _serve_share(share: str, relative: str, request: Request):
    """``/<share>/`` lists the months that have the share; ``/<share>/<YYYY-MM>/...`` serves it."""
    root, subdir = output_root(), share_subdir(share)
    title = TITLES[share]
    period, _, rest = relative.strip("/").partition("/")
    if not period:
        if not request.url.path.endswith("/"):
            return RedirectResponse(url=request.url.path + "/", status_code=307)
        periods = []
        if root.is_dir():
            periods = sorted(
                p.name for p in root.iterdir() if _PERIOD.match(p.name) and (p / subdir).is_dir()
            )
        return _listing(title, [(f"{p}/", p) for p in reversed(periods)])
    if not _PERIOD.match(period):
        raise HTTPException(status_code=404, detail="Not found")
    return _serve(root / period / subdir, rest, request, f"{title} {period}")


@app.get("/data-docs/{relative:path}")
def data_docs(relative: str, request: Request, user: DataDocsReader):
    return _serve_share("data-docs", relative, request)


@app.get("/mhis/{relative:path}")
def mhis_outputs(relative: str, request: Request, user: MhisReader):
    return _serve_share("mhis", relative, request)


@app.get("/dq/{relative:path}")
def dq_pages(relative: str, request: Request, user: DataDocsReader):
    return _serve_share("dq", relative, request)


@app.get("/dbt-docs/{relative:path}")
def dbt_docs(relative: str, request: Request, user: DataDocsReader):
    return _serve_share("dbt-docs", relative, request)


@app.get("/month/{relative:path}")
async def month(relative: str, request: Request, user: CurrentUser):
    """``/month/<YYYY-MM>/<sub-directory>/...``: one month's outputs under one prefix, so the
    pages' relative links to each other (Data Docs <-> IG page <-> DQMI) work here as on disk.
    Each sub-directory keeps its share's authorisation."""
    period, _, rest = relative.strip("/").partition("/")
    subdir, _, inner = rest.partition("/")
    by_subdir = {share_subdir(name): name for name in SHARES}
    if not _PERIOD.match(period):
        raise HTTPException(status_code=404, detail="Not found")
    if not subdir:
        readable = [
            (f"{share_subdir(name)}/", TITLES[name])
            for name, (resource, _, _) in SHARES.items()
            if is_authorized(user, resource) and (output_root() / period / share_subdir(name)).is_dir()
        ]
        return _listing(f"MHSDS {period}", readable)
    share = by_subdir.get(subdir)
    if share is None:
        raise HTTPException(status_code=404, detail="Not found")
    if not is_authorized(user, SHARES[share][0]):
        raise HTTPException(
            status_code=403, detail=f"Your Airflow role does not grant read on {SHARES[share][0]}."
        )
    return _serve(output_root() / period / subdir, inner, request, f"{TITLES[share]} {period}")


class MhsdsFilesPlugin(AirflowPlugin):
    name = "mhsds_files"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "MHSDS Data Docs and MHIS outputs"}]
    external_views = [
        {"name": "IG page", "href": f"{URL_PREFIX}/dq/", "destination": "nav", "category": "browse"},
        {"name": "Data Docs", "href": f"{URL_PREFIX}/data-docs/", "destination": "nav", "category": "browse"},
        {"name": "dbt docs", "href": f"{URL_PREFIX}/dbt-docs/", "destination": "nav", "category": "browse"},
        {"name": "MHIS outputs", "href": f"{URL_PREFIX}/mhis/", "destination": "nav", "category": "browse"},
    ]
