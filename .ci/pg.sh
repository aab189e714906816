#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests (SPEC §11.2 against a real server). Sourced by
# .ci/run: `pg_prepare` installs what is missing, `pg_start` initdb's a cluster in a temp dir as an
# unprivileged user (postgres refuses to run as root), starts it on a free local port with TLS and
# exports LEARNLOOP_TEST_PG_URL; `pg_stop` stops it and removes the directory.

pg_bin() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1
}

# The PostgreSQL server, and the OpenSSL headers the TLS client (native-tls) builds against.
pg_prepare() {
    local missing=()
    [ -n "$(pg_bin)" ] || missing+=(postgresql)
    command -v openssl >/dev/null || missing+=(openssl)
    command -v pkg-config >/dev/null || missing+=(pkg-config)
    pkg-config --exists openssl 2>/dev/null || missing+=(libssl-dev)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing ${missing[*]}" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# Run as the cluster's owner: `nobody` when we are root, ourselves otherwise.
pg_as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi
}

# Hand files to the cluster's owner (when we are root).
pg_own() {
    if [ "$(id -u)" = 0 ]; then chown nobody "$@"; fi
}

pg_free_port() {
    local port
    for port in $(seq 55432 55632); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    echo "no free port in 55432-55632" >&2
    return 1
}

pg_start() {
    local bin port password
    bin="$(pg_bin)"
    PG_TEST_DIR="$(mktemp -d /tmp/learnloop-pg.XXXXXX)"
    chmod 755 "$PG_TEST_DIR"
    pg_own "$PG_TEST_DIR"
    password="$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
    printf '%s\n' "$password" >"$PG_TEST_DIR/pwfile"
    pg_own "$PG_TEST_DIR/pwfile"
    pg_as_owner "$bin/initdb" -D "$PG_TEST_DIR/data" -U learnloop --auth=scram-sha-256 \
        --pwfile="$PG_TEST_DIR/pwfile" -E UTF8 --no-locale >"$PG_TEST_DIR/initdb.log"
    rm -f "$PG_TEST_DIR/pwfile"
    # A self-signed certificate, so that sslmode=require is tested against a real TLS server.
    openssl req -new -x509 -days 3 -nodes -subj /CN=localhost \
        -keyout "$PG_TEST_DIR/data/server.key" -out "$PG_TEST_DIR/data/server.crt" 2>/dev/null
    chmod 600 "$PG_TEST_DIR/data/server.key"
    pg_own "$PG_TEST_DIR/data/server.key" "$PG_TEST_DIR/data/server.crt"
    port="$(pg_free_port)"
    pg_as_owner "$bin/pg_ctl" -D "$PG_TEST_DIR/data" -l "$PG_TEST_DIR/server.log" -w \
        -o "-p $port -k $PG_TEST_DIR -c listen_addresses=127.0.0.1 -c ssl=on -c fsync=off -c max_connections=100" \
        start >/dev/null
    PGPASSWORD="$password" "$bin/psql" -q -h 127.0.0.1 -p "$port" -U learnloop -d postgres \
        -c 'CREATE DATABASE learnloop_test' >/dev/null
    export LEARNLOOP_TEST_PG_URL="postgresql://learnloop:$password@127.0.0.1:$port/learnloop_test?sslmode=disable"
    export LEARNLOOP_TEST_PG_TLS=1
    echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') test cluster on 127.0.0.1:$port ($PG_TEST_DIR)" >&2
}

pg_stop() {
    [ -n "${PG_TEST_DIR:-}" ] || return 0
    pg_as_owner "$(pg_bin)/pg_ctl" -D "$PG_TEST_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$PG_TEST_DIR"
    PG_TEST_DIR=
}
