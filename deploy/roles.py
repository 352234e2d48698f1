"""Airflow roles for the MHSDS platform, defined in code and synced into the metadata DB.

Who may do what (FAB auth manager, ``apache-airflow-providers-fab``):

* ``DataEngineer``: operates the pipeline: everything the built-in ``Op`` role has (trigger,
  clear, pause, connections, variables, pools), plus the Data Docs and MHIS outputs. Not user or
  role administration (that stays with ``Admin``).
* ``IGReviewer`` (information governance): reads DAGs, DAG runs, task instances, task logs,
  audit logs and the Data Docs; cannot trigger, clear, pause, edit or delete anything, and
  cannot read XComs (task return values) or connections.
* ``FinanceReader``: reads the MHIS outputs only: no DAGs, runs, logs or Data Docs.

Data Docs and MHIS outputs are files, served by the ``mhsds_files`` Airflow plugin
(``deploy/airflow_plugins/mhsds_files.py``) behind the custom FAB resources below, so the
same roles govern them.

Usage (inside an Airflow environment: the compose ``airflow-init`` service runs ``sync``)::

    python deploy/roles.py sync    # create/update the roles; removes permissions not defined here
    python deploy/roles.py check   # exit 1 if the database differs from this file
    python deploy/roles.py show    # the definitions as JSON
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable

from airflow.providers.fab.www.security import permissions as p

#: Custom FAB resources for the file views (kept identical in deploy/airflow_plugins/mhsds_files.py).
RESOURCE_DATA_DOCS = "MHSDS Data Docs"
RESOURCE_MHIS_OUTPUTS = "MHIS Outputs"

READ, EDIT, CREATE, DELETE, MENU = (
    p.ACTION_CAN_READ,
    p.ACTION_CAN_EDIT,
    p.ACTION_CAN_CREATE,
    p.ACTION_CAN_DELETE,
    p.ACTION_CAN_ACCESS_MENU,
)

Permission = tuple[str, str]  # (action, resource)

#: Every signed-in user: the home page and their own profile and password.
_SELF_SERVICE: list[Permission] = [
    (READ, p.RESOURCE_WEBSITE),
    (READ, p.RESOURCE_MY_PROFILE),
    (EDIT, p.RESOURCE_MY_PROFILE),
    (READ, p.RESOURCE_MY_PASSWORD),
    (EDIT, p.RESOURCE_MY_PASSWORD),
]

_IG_REVIEWER: list[Permission] = [
    *_SELF_SERVICE,
    (READ, p.RESOURCE_DAG),
    (READ, p.RESOURCE_DAG_CODE),
    (READ, p.RESOURCE_DAG_DEPENDENCIES),
    (READ, p.RESOURCE_DAG_RUN),
    (READ, p.RESOURCE_DAG_VERSION),
    (READ, p.RESOURCE_DAG_WARNING),
    (READ, p.RESOURCE_TASK_INSTANCE),
    (READ, p.RESOURCE_TASK_LOG),
    (READ, p.RESOURCE_AUDIT_LOG),
    (READ, p.RESOURCE_IMPORT_ERROR),
    (READ, RESOURCE_DATA_DOCS),
    (MENU, p.RESOURCE_BROWSE_MENU),
    (MENU, p.RESOURCE_DAG),
    (MENU, p.RESOURCE_DAG_RUN),
    (MENU, p.RESOURCE_TASK_INSTANCE),
    (MENU, p.RESOURCE_AUDIT_LOG),
    (MENU, RESOURCE_DATA_DOCS),
]

_FINANCE_READER: list[Permission] = [
    *_SELF_SERVICE,
    (READ, RESOURCE_MHIS_OUTPUTS),
    (MENU, RESOURCE_MHIS_OUTPUTS),
]


def _data_engineer() -> list[Permission]:
    from airflow.providers.fab.auth_manager.security_manager.override import (
        FabAirflowSecurityManagerOverride as SM,
    )

    return [
        *SM.VIEWER_PERMISSIONS,
        *SM.USER_PERMISSIONS,
        *SM.OP_PERMISSIONS,
        (READ, RESOURCE_DATA_DOCS),
        (MENU, RESOURCE_DATA_DOCS),
        (READ, RESOURCE_MHIS_OUTPUTS),
        (MENU, RESOURCE_MHIS_OUTPUTS),
    ]


def role_definitions() -> dict[str, list[Permission]]:
    """Role name -> sorted, de-duplicated (action, resource) permissions."""
    roles = {
        "DataEngineer": _data_engineer(),
        "IGReviewer": _IG_REVIEWER,
        "FinanceReader": _FINANCE_READER,
    }
    return {name: sorted(set(perms)) for name, perms in roles.items()}


def _role_permissions(role) -> set[Permission]:
    return {
        (perm.action.name, perm.resource.name) for perm in role.permissions if perm.action and perm.resource
    }


def sync_roles(sm, definitions: dict[str, Iterable[Permission]] | None = None, prune: bool = True) -> dict:
    """Make each role hold exactly its defined permissions (``prune=False``: only add).

    ``sm`` is the FAB security manager (``appbuilder.sm``). Returns what changed per role.
    """
    definitions = role_definitions() if definitions is None else definitions
    changes: dict[str, dict[str, list[Permission]]] = {}
    for name, perms in definitions.items():
        wanted = set(perms)
        role = sm.find_role(name) or sm.add_role(name)
        have = _role_permissions(role)
        added = sorted(wanted - have)
        removed = sorted(have - wanted) if prune else []
        for action, resource in added:
            perm = sm.get_permission(action, resource) or sm.create_permission(action, resource)
            sm.add_permission_to_role(role, perm)
        if removed:
            for perm in list(role.permissions):
                if perm.action and perm.resource and (perm.action.name, perm.resource.name) in removed:
                    sm.remove_permission_from_role(role, perm)
        changes[name] = {"added": added, "removed": removed}
    return changes


def drift(sm, definitions: dict[str, Iterable[Permission]] | None = None) -> dict:
    """Roles whose permissions in the database differ from the definitions."""
    definitions = role_definitions() if definitions is None else definitions
    out: dict[str, dict] = {}
    for name, perms in definitions.items():
        role = sm.find_role(name)
        if role is None:
            out[name] = {"missing_role": True}
            continue
        have, wanted = _role_permissions(role), set(perms)
        if have != wanted:
            out[name] = {"missing": sorted(wanted - have), "extra": sorted(have - wanted)}
    return out


def ensure_admin(sm, env=None) -> str:
    """Create the first Admin from ``_AIRFLOW_WWW_USER_USERNAME`` / ``_AIRFLOW_WWW_USER_PASSWORD``
    if that user does not exist (the password is never printed or changed afterwards)."""
    env = os.environ if env is None else env
    username = env.get("_AIRFLOW_WWW_USER_USERNAME") or "admin"
    password = env.get("_AIRFLOW_WWW_USER_PASSWORD")
    if sm.find_user(username=username):
        return f"Admin user {username!r} exists"
    if not password:
        raise SystemExit("Set _AIRFLOW_WWW_USER_PASSWORD (in .env) to create the first Admin user.")
    user = sm.add_user(
        username, "MHSDS", "Administrator", f"{username}@localhost", sm.find_role("Admin"), password
    )
    if not user:
        raise SystemExit(f"Could not create the Admin user {username!r}")
    return f"Admin user {username!r} created"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["sync", "check", "show"])
    parser.add_argument("--no-prune", action="store_true", help="sync: add missing permissions only")
    parser.add_argument(
        "--ensure-admin", action="store_true", help="sync: create the first Admin from _AIRFLOW_WWW_USER_*"
    )
    ns = parser.parse_args(argv)
    if ns.command == "show":
        print(json.dumps(role_definitions(), indent=2))
        return 0

    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

    with get_application_builder() as appbuilder:
        if ns.command == "sync":
            changes = sync_roles(appbuilder.sm, prune=not ns.no_prune)
            if ns.ensure_admin:
                print(ensure_admin(appbuilder.sm))
            for name, change in changes.items():
                print(f"{name}: +{len(change['added'])} -{len(change['removed'])} permissions")
            return 0
        problems = drift(appbuilder.sm)
        if problems:
            print(json.dumps(problems, indent=2))
            print("Roles differ from deploy/roles.py: run `python deploy/roles.py sync`.", file=sys.stderr)
            return 1
        print("Roles match deploy/roles.py.")
        return 0


if __name__ == "__main__":
    sys.exit(main())
