#!/usr/bin/env bash
# The demo PostgreSQL 15 of deploy/compose.yaml's `postgres` profile (deploy/postgres.Dockerfile), run as the
# `postgres` user. On an empty data folder: initdb with POSTGRES_USER as the superuser and POSTGRES_PASSWORD
# (scram-sha-256 from any address; the folder is the container's own volume), then the database POSTGRES_DB. Then
# the server in the foreground (exec: it gets the image's stop signal), on every address of the container. The
# variables are the official postgres image's, so either image fits compose.yaml. Arguments go to `postgres`.
# What it is not: a production database (no tuning, no backups, no TLS).
set -euo pipefail
bin=/usr/lib/postgresql/15/bin
data="${PGDATA:-/var/lib/postgresql/data}"
: "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
user="${POSTGRES_USER:-postgres}"
database="${POSTGRES_DB:-$user}"
if [ ! -s "$data/PG_VERSION" ]; then
  "$bin/initdb" --pgdata "$data" --username "$user" --auth scram-sha-256 \
    --pwfile <(printf '%s\n' "$POSTGRES_PASSWORD") >/dev/null
  echo "host all all all scram-sha-256" >>"$data/pg_hba.conf"
  if [ "$database" != postgres ]; then
    echo "CREATE DATABASE \"$database\" OWNER \"$user\";" | "$bin/postgres" --single -D "$data" postgres >/dev/null
  fi
fi
exec "$bin/postgres" -D "$data" -c listen_addresses='*' "$@"
