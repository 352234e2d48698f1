"""Where things live and how the pipeline is configured.

Everything comes from environment variables with defaults that give the embedded set-up
(SQLite clinical source, DuckDB warehouse, outputs under the repo). Production sets the same
variables (see docker-compose.yml); nothing secret has a default here. The variables are
declared, typed and range-checked once, in :mod:`mhsds_pipeline.settings`; :func:`load_settings`
turns that validated object into the :class:`Settings` the pipeline passes around.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mhsds_pipeline.settings import ConfigurationError, EnvSettings, read_settings, split_list

#: Repository root: plugins/mhsds_pipeline/config.py -> parents[2].
_REPO_ROOT = Path(__file__).resolve().parents[2]

MHSDS_SPEC_VERSION = "6.0"

#: The organisations this installation may submit for when MHSDS_ALLOWED_ORG_IDS is not set:
#: the synthetic trust only, so a production set-up must name its own.
DEFAULT_ALLOWED_ORG_IDS = split_list(EnvSettings.model_fields["allowed_org_ids"].default)


@dataclass(frozen=True)
class Settings:
    home: Path
    source_url: str = field(repr=False)  # may carry the reader's password
    data_dir: Path
    output_dir: Path
    warehouse_target: str  # duckdb | postgres
    warehouse_path: Path  # DuckDB file (duckdb target only)
    dbt_project_dir: Path
    org_id_provider: str
    org_id_submit: str
    prim_system_in_use: str
    extract_chunk_rows: int
    keep_versions: int = field(default=3)
    #: MHSDS_ALLOWED_ORG_IDS: the ODS codes the trust may submit for (provider and submitter)
    allowed_org_ids: tuple[str, ...] = field(default=DEFAULT_ALLOWED_ORG_IDS)

    def __post_init__(self) -> None:
        check_organisations(self.org_id_provider, self.org_id_submit, self.allowed_org_ids)

    @property
    def landing_root(self) -> Path:
        return self.data_dir / "landing"

    def landing_dir(self, period: str) -> Path:
        return self.landing_root / period

    @property
    def epr_dir(self) -> Path:
        return self.data_dir / "epr"

    @property
    def is_embedded_source(self) -> bool:
        """A SQLite source (any file). Whether the pipeline may *build* it is a different
        question: see :attr:`is_demo_default_source`."""
        return self.source_url.startswith("sqlite")

    @property
    def demo_source_path(self) -> Path:
        """Where the built-in demo source lives: ``<data_dir>/epr/epr.sqlite``."""
        return self.epr_dir / "epr.sqlite"

    @property
    def sqlite_source_path(self) -> Path | None:
        """The database file of a SQLite source; None for a server database or in-memory SQLite."""
        from sqlalchemy.engine import make_url

        try:
            url = make_url(self.source_url)
        except Exception:  # noqa: BLE001 - a malformed URL is not a SQLite file
            return None
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return None
        database = url.database
        if database.startswith("file:"):  # SQLite URI filename (``?uri=true``)
            from urllib.parse import unquote, urlsplit

            database = unquote(urlsplit(database).path)
        return Path(database)

    @property
    def is_demo_default_source(self) -> bool:
        """True only for the built-in synthetic demo source: MHSDS_SOURCE_URL unset, or naming
        the default file ``<data_dir>/epr/epr.sqlite``. Only this source may be built by
        ``make run`` when absent; any other configured source is read, never invented (a
        missing one is an error, see :func:`mhsds_pipeline.extract.source_engine`)."""
        path = self.sqlite_source_path
        return path is not None and path.resolve() == self.demo_source_path.resolve()


def check_organisations(provider: str, submitter: str, allowed: tuple[str, ...]) -> None:
    """OrgIDProvider and OrgIDSubmit must be ODS codes (the v6 header formats, MHS00029 and
    MHS00032) and in the configured list of organisations the trust may submit for."""
    from mhsds_pipeline.formats import PROVIDER_FORMAT, SUBMITTER_FORMAT, ods_code_problem, safe_detail

    problems = []
    for i, code in enumerate(allowed):
        if why := ods_code_problem(code, SUBMITTER_FORMAT):
            problems.append(
                f"MHSDS_ALLOWED_ORG_IDS entry {i + 1} {safe_detail(code)} is not an ODS code ({why})"
            )
    for var, code, fmt in (
        ("MHSDS_ORG_ID_PROVIDER", provider, PROVIDER_FORMAT),
        ("MHSDS_ORG_ID_SUBMIT", submitter, SUBMITTER_FORMAT),
    ):
        if why := ods_code_problem(code, fmt):
            problems.append(
                f"{var} {safe_detail(code)} is not an ODS organisation code ({why}; expected {fmt.text}: "
                "capital letters and digits, e.g. R1A)"
            )
        elif code not in allowed:
            problems.append(
                f"{var} {code!r} is not an organisation this trust may submit for "
                f"(MHSDS_ALLOWED_ORG_IDS: {', '.join(allowed) or 'empty'})"
            )
    if problems:
        raise ConfigurationError(
            "MHSDS configuration error: "
            + "; ".join(problems)
            + ". Fix the environment (MHSDS_ORG_ID_PROVIDER, MHSDS_ORG_ID_SUBMIT, MHSDS_ALLOWED_ORG_IDS "
            "as a comma-separated list); nothing was extracted or published."
        )


def default_source_url(data_dir: Path) -> str:
    """The built-in demo source: the synthetic EPR that ``make run`` builds when it is absent."""
    return f"sqlite:///{data_dir / 'epr' / 'epr.sqlite'}"


def load_settings() -> Settings:
    """The pipeline's settings from the environment. Raises :class:`ConfigurationError` naming
    each bad variable (a number that is not one, a port out of range, an unknown warehouse
    target, an organisation this trust may not submit for)."""
    env = read_settings()
    home = (env.home or _REPO_ROOT).resolve()
    data_dir = env.data_dir or home / "data"
    return Settings(
        home=home,
        source_url=env.source_url.get_secret_value() if env.source_url else default_source_url(data_dir),
        data_dir=data_dir,
        output_dir=env.output_dir or home / "output",
        warehouse_target=env.warehouse_target,
        warehouse_path=env.warehouse_path or data_dir / "warehouse" / "mhsds.duckdb",
        dbt_project_dir=env.dbt_project_dir or home / "dbt_project",
        org_id_provider=env.org_id_provider,
        org_id_submit=env.org_id_submit or env.org_id_provider,
        prim_system_in_use=env.prim_system_in_use,
        extract_chunk_rows=env.extract_chunk_rows,
        keep_versions=env.keep_versions,
        allowed_org_ids=split_list(env.allowed_org_ids),
    )


def redact_url(url: str) -> str:
    """A connection URL safe to log: the password replaced."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL is still not to be logged verbatim
        return "<unparseable url>"
