#!/usr/bin/env bash
# Demo clinical source, first start of clinical-db (/docker-entrypoint-initdb.d): creates the
# pipeline's read-only login MHSDS_SOURCE_USER (default epr_reader) with SELECT on every table the
# owner (POSTGRES_USER, used only by the synthetic loader) creates in schema public.
# In a trust the source is the EPR's reporting replica and its DBA grants the same to the reader.
set -euo pipefail
reader="${MHSDS_SOURCE_USER:-epr_reader}"
: "${MHSDS_SOURCE_PASSWORD:?the reader password is required}"
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v reader="$reader" -v reader_password="$MHSDS_SOURCE_PASSWORD" \
  -v owner="$POSTGRES_USER" -v db="$POSTGRES_DB" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'reader', :'reader_password')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'reader') \gexec
GRANT CONNECT ON DATABASE :"db" TO :"reader";
GRANT USAGE ON SCHEMA public TO :"reader";
GRANT SELECT ON ALL TABLES IN SCHEMA public TO :"reader";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT SELECT ON TABLES TO :"reader";
SQL
