#!/bin/sh
# Run once by the postgres image when it creates the primary's database
# (docker-compose.yml mounts it into /docker-entrypoint-initdb.d): lets the replica
# service connect for replication, and keeps WAL for it in a slot of its own.
set -e
echo "host replication all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -c "SELECT pg_create_physical_replication_slot('replica1')"
