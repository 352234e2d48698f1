"""FAB auth manager configuration (``[fab] config_file``; the image installs it as
``$AIRFLOW_HOME/webserver_config.py``).

Default: Airflow's own user database (``AUTH_DB``); users are created by an Admin and given one
of the roles in ``deploy/roles.py``. Self-registration is off and anonymous users get nothing.

Single sign-on with the trust's Microsoft Entra ID (NHSmail / trust AD) is switched on by
setting ``MHSDS_OAUTH_TENANT_ID``, ``MHSDS_OAUTH_CLIENT_ID`` and ``MHSDS_OAUTH_CLIENT_SECRET``
(from ``.env``, never here). Entra security groups then map to the roles with
``MHSDS_OAUTH_ROLE_GROUPS``, e.g.
``DataEngineer=sg-mhsds-data-engineers;IGReviewer=sg-ig-team;FinanceReader=sg-finance-mhis``
(group object ids or names, as the token's ``groups`` claim carries them), re-synced at login.
"""

from __future__ import annotations

import os

from flask_appbuilder.const import AUTH_DB, AUTH_OAUTH

WTF_CSRF_ENABLED = True
WTF_CSRF_TIME_LIMIT = None
AUTH_ROLE_PUBLIC = None  # anonymous users see nothing
AUTH_USER_REGISTRATION = False
AUTH_TYPE = AUTH_DB


def role_groups(spec: str) -> dict[str, list[str]]:
    """``Role=group1,group2;Role2=group3`` -> FAB's AUTH_ROLES_MAPPING (group -> [roles])."""
    mapping: dict[str, list[str]] = {}
    for item in filter(None, (s.strip() for s in spec.split(";"))):
        role, _, groups = item.partition("=")
        for group in filter(None, (g.strip() for g in groups.split(","))):
            mapping.setdefault(group, []).append(role.strip())
    return mapping


_tenant = os.environ.get("MHSDS_OAUTH_TENANT_ID")
if _tenant:
    AUTH_TYPE = AUTH_OAUTH
    AUTH_USER_REGISTRATION = True  # accounts are created at first login; roles come from groups
    AUTH_USER_REGISTRATION_ROLE = "Public"  # no access unless a mapped group grants a role
    AUTH_ROLES_SYNC_AT_LOGIN = True
    AUTH_ROLES_MAPPING = role_groups(os.environ.get("MHSDS_OAUTH_ROLE_GROUPS", ""))
    OAUTH_PROVIDERS = [
        {
            "name": "azure",
            "icon": "fa-windows",
            "token_key": "access_token",
            "remote_app": {
                "client_id": os.environ.get("MHSDS_OAUTH_CLIENT_ID"),
                "client_secret": os.environ.get("MHSDS_OAUTH_CLIENT_SECRET"),
                "api_base_url": f"https://login.microsoftonline.com/{_tenant}/oauth2",
                "client_kwargs": {"scope": "User.read name preferred_username email profile upn"},
                "request_token_url": None,
                "access_token_url": f"https://login.microsoftonline.com/{_tenant}/oauth2/token",
                "authorize_url": f"https://login.microsoftonline.com/{_tenant}/oauth2/authorize",
                "jwks_uri": "https://login.microsoftonline.com/common/discovery/v2.0/keys",
            },
        }
    ]
