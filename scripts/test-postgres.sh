#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server on loopback for the audit-store tests and exports
# WARDEN_TEST_POSTGRES_URL; stops it and deletes its data when the sourcing script exits.
# Sourced by scripts/test.sh (Debian's `postgresql` package; setup.sh installs it).
pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
    echo "test-postgres: PostgreSQL server binaries not found (apt-get install postgresql)" >&2
    exit 1
fi
pg_port="${WARDEN_TEST_POSTGRES_PORT:-55432}"
pg_data="$(mktemp -d /var/tmp/warden-pg.XXXXXX)"
chown postgres "$pg_data"
chmod 700 "$pg_data"
stop_test_postgres() {
    su postgres -s /bin/sh -c "'$pg_bin/pg_ctl' -D '$pg_data' -m immediate stop" >/dev/null 2>&1 || true
    rm -rf "$pg_data"
}
trap stop_test_postgres EXIT
echo "== postgres: starting a test server on 127.0.0.1 ($pg_bin)" >&2
su postgres -s /bin/sh -c "'$pg_bin/initdb' -D '$pg_data/db' -U warden -A trust --no-sync" >"$pg_data/initdb.log" 2>&1 \
    || { cat "$pg_data/initdb.log" >&2; exit 1; }
# Another server (another test run) may hold the port: try the next ones.
started=0
for attempt in $(seq 0 19); do
    port=$((pg_port + attempt))
    if su postgres -s /bin/sh -c "'$pg_bin/pg_ctl' -D '$pg_data/db' -l '$pg_data/server.log' -w -t 30 \
        -o \"-c listen_addresses=127.0.0.1 -p $port -k '$pg_data' -c fsync=on\" start" >/dev/null 2>&1; then
        pg_port=$port
        started=1
        break
    fi
    grep -q "Address already in use" "$pg_data/server.log" 2>/dev/null || break
done
if [ "$started" -ne 1 ]; then
    cat "$pg_data/server.log" >&2
    exit 1
fi
pg_data_dir="$pg_data/db"
stop_test_postgres() {
    su postgres -s /bin/sh -c "'$pg_bin/pg_ctl' -D '$pg_data_dir' -m immediate stop" >/dev/null 2>&1 || true
    rm -rf "$pg_data"
}
echo "== postgres: listening on 127.0.0.1:$pg_port" >&2
export WARDEN_TEST_POSTGRES_URL="postgres://warden@127.0.0.1:$pg_port/postgres"
export WARDEN_TEST_POSTGRES_BIN="$pg_bin"
