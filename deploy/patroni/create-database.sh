#!/bin/sh
# Patroni's post_bootstrap (patroni.yml): run once, on the first leader, right after initdb,
# with a connection string as $1. Makes the application's database, as the official
# PostgreSQL image does for POSTGRES_DB.
set -eu
psql "$1" -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"${POSTGRES_DB:-tasks}\""
