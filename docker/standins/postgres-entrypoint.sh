#!/bin/sh
# Initialise PGDATA on first start the way the official image does, then run the server.
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  echo "CREATE DATABASE \"${POSTGRES_DB:-$POSTGRES_USER}\"" | postgres --single -D "$PGDATA" -j postgres >/dev/null
fi
exec "$@" -c listen_addresses='*'
