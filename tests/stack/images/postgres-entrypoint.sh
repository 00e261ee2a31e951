#!/bin/sh
# The official image's contract on an empty PGDATA: a superuser POSTGRES_USER with
# POSTGRES_PASSWORD, a database POSTGRES_DB, TCP connections from anywhere authenticated with
# POSTGRES_HOST_AUTH_METHOD (scram-sha-256 by default).
set -eu

if [ "$(id -u)" = 0 ]; then
  # A fresh volume or tmpfs is owned by root: hand it to postgres, then drop root.
  mkdir -p "$PGDATA" /var/run/postgresql
  chown postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 0700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ "${1:-}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  user=${POSTGRES_USER:-postgres}
  database=${POSTGRES_DB:-$user}
  auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
  password_file=$(mktemp)
  printf '%s\n' "${POSTGRES_PASSWORD:-}" >"$password_file"
  if [ -n "${POSTGRES_PASSWORD:-}" ]; then
    initdb --username="$user" --pwfile="$password_file" --auth-local=trust --auth-host="$auth" \
      --encoding=UTF8 -D "$PGDATA"
  else
    initdb --username="$user" --auth-local=trust --auth-host="$auth" --encoding=UTF8 -D "$PGDATA"
  fi
  rm -f "$password_file"
  echo "host all all all $auth" >>"$PGDATA/pg_hba.conf"
  echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
  # A server on the socket only while the database is created, so no client (nor the
  # healthcheck, which uses TCP) sees it before it is ready.
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
  if [ "$database" != postgres ]; then
    psql -v ON_ERROR_STOP=1 --username="$user" --dbname=postgres \
      -c "CREATE DATABASE \"$database\""
  fi
  pg_ctl -D "$PGDATA" -m fast -w stop
fi

exec "$@"
