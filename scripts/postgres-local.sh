#!/usr/bin/env bash
# A throwaway PostgreSQL for the test suite: the machine's initdb/pg_ctl (Debian's postgresql-15,
# pinned, installed when missing and run as root), a fresh cluster in a temporary directory, on a free
# loopback port, with trust authentication on loopback only. Run as root, the server runs as the
# unprivileged `postgres` user (PostgreSQL refuses to run as root).
#
# TLS is on, as on RDS: a throwaway CA (openssl, which Debian's postgresql package brings) signs the
# server's certificate for 127.0.0.1 and localhost. DATABASE_URL names no sslmode, so the driver's
# default (`prefer`) takes TLS without checking the certificate; the TLS tests add
# `sslmode=verify-full&sslrootcert=$LEDGER_TEST_PG_CA`, and `$LEDGER_TEST_PG_OTHER_CA` is a CA that
# signed nothing, which verify-full must refuse. Members of the role `ledger_password_auth` (tests
# create them) log in with a password (scram-sha-256), not by trust: the credentials tests need a
# server that checks one.
#
#   source scripts/postgres-local.sh && postgres_local_start   # exports DATABASE_URL, LEDGER_TEST_PG_CA,
#                                                               # LEDGER_TEST_PG_OTHER_CA
#   postgres_local_stop                                         # stops it, removes the cluster
#
# Fails loudly when it cannot: the PostgreSQL suites are never skipped.

POSTGRES_LOCAL_MAJOR=15
POSTGRES_LOCAL_START_TIMEOUT_SECS=60
POSTGRES_LOCAL_USER=postgres
# Members of this role authenticate with a password; everyone else on loopback is trusted.
POSTGRES_LOCAL_PASSWORD_ROLE=ledger_password_auth
# shellcheck source=scripts/local-service.sh
source "$(dirname "${BASH_SOURCE[0]}")/local-service.sh"

postgres_local_fail() {
  echo "error: PostgreSQL: $*" >&2
  echo "error: the PostgreSQL suites need it; see scripts/postgres-local.sh" >&2
  return 1
}

# Sets POSTGRES_LOCAL_BIN to a directory holding initdb, pg_ctl and pg_isready.
postgres_local_find() {
  local dir
  for dir in "/usr/lib/postgresql/${POSTGRES_LOCAL_MAJOR}/bin" "$(dirname "$(command -v pg_ctl 2>/dev/null || echo /nonexistent/pg_ctl)")"; do
    if [ -x "${dir}/initdb" ] && [ -x "${dir}/pg_ctl" ] && [ -x "${dir}/pg_isready" ]; then
      POSTGRES_LOCAL_BIN="$dir"
      return 0
    fi
  done
  return 1
}

postgres_local_install() {
  postgres_local_find && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing postgresql-${POSTGRES_LOCAL_MAJOR} for the PostgreSQL suites"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "postgresql-${POSTGRES_LOCAL_MAJOR}") >/dev/null ||
      postgres_local_fail "could not install postgresql-${POSTGRES_LOCAL_MAJOR}" || return 1
    postgres_local_find || postgres_local_fail "postgresql-${POSTGRES_LOCAL_MAJOR} installed no initdb/pg_ctl" || return 1
  else
    postgres_local_fail "initdb and pg_ctl (PostgreSQL ${POSTGRES_LOCAL_MAJOR}) are required" || return 1
  fi
}

# Runs a PostgreSQL program as the cluster's owner: ourselves, or `postgres` when we are root.
postgres_local_as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u "$POSTGRES_LOCAL_USER" -- "$@"
  else
    "$@"
  fi
}

# A CA of the cluster's own and the server's certificate it signs (P-256: quick to make), in the data
# directory where the server finds them (`server.crt`, `server.key`, the key readable by its owner
# only), the CA beside; and a second CA that signed nothing.
postgres_local_certificates() {
  command -v openssl >/dev/null || postgres_local_fail "openssl is required for the server's TLS certificate" || return 1
  local dir="$POSTGRES_LOCAL_DIR" data="${POSTGRES_LOCAL_DIR}/data" ca
  for ca in ca other-ca; do
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj "/CN=ledger test ${ca}" -keyout "${dir}/${ca}.key" -out "${dir}/${ca}.crt" 2>/dev/null ||
      postgres_local_fail "openssl could not make the ${ca} certificate" || return 1
  done
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=127.0.0.1" \
      -keyout "${data}/server.key" -out "${dir}/server.csr" 2>/dev/null &&
    openssl x509 -req -in "${dir}/server.csr" -CA "${dir}/ca.crt" -CAkey "${dir}/ca.key" -CAcreateserial \
      -days 2 -extfile <(printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n') \
      -out "${data}/server.crt" 2>/dev/null ||
    postgres_local_fail "openssl could not sign the server certificate" || return 1
  chmod 600 "${data}/server.key"
  if [ "$(id -u)" = 0 ]; then
    chown "$POSTGRES_LOCAL_USER" "${data}/server.key" "${data}/server.crt" ||
      postgres_local_fail "cannot give the server's key to ${POSTGRES_LOCAL_USER}" || return 1
  fi
}

postgres_local_start() {
  postgres_local_install || return 1
  if [ "$(id -u)" = 0 ] && ! id "$POSTGRES_LOCAL_USER" >/dev/null 2>&1; then
    postgres_local_fail "no user ${POSTGRES_LOCAL_USER} to run the server as (root may not)" || return 1
  fi
  local port owner
  port="$(local_service_free_port)" || postgres_local_fail "no free port" || return 1
  POSTGRES_LOCAL_DIR="$(mktemp -d -t ledger-postgres.XXXXXX)" || postgres_local_fail "no temporary directory" || return 1
  if [ "$(id -u)" = 0 ]; then
    chown "$POSTGRES_LOCAL_USER" "$POSTGRES_LOCAL_DIR" || postgres_local_fail "cannot give ${POSTGRES_LOCAL_DIR} to ${POSTGRES_LOCAL_USER}" || return 1
    owner="$POSTGRES_LOCAL_USER"
  else
    owner="$(id -un)"
  fi
  # Trust on loopback only; the server listens on nothing else (and on no Unix socket outside the dir).
  postgres_local_as_owner "${POSTGRES_LOCAL_BIN}/initdb" -D "${POSTGRES_LOCAL_DIR}/data" -U "$owner" \
      --auth-local=trust --auth-host=trust --encoding=UTF8 --locale=C.UTF-8 >"${POSTGRES_LOCAL_DIR}/initdb.log" 2>&1 || {
    cat "${POSTGRES_LOCAL_DIR}/initdb.log" >&2
    postgres_local_fail "initdb failed" || return 1
  }
  postgres_local_certificates || return 1
  # pg_hba.conf is read top down, first match wins: the password role's line goes before trust's.
  local hba="${POSTGRES_LOCAL_DIR}/data/pg_hba.conf"
  { echo "host all +${POSTGRES_LOCAL_PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256"; cat "$hba"; } >"${hba}.new" &&
    mv "${hba}.new" "$hba" && chown "$owner" "$hba" ||
    postgres_local_fail "cannot write ${hba}" || return 1
  postgres_local_as_owner "${POSTGRES_LOCAL_BIN}/pg_ctl" -D "${POSTGRES_LOCAL_DIR}/data" \
      -l "${POSTGRES_LOCAL_DIR}/server.log" -w -t "$POSTGRES_LOCAL_START_TIMEOUT_SECS" \
      -o "-c listen_addresses=127.0.0.1 -p ${port} -k ${POSTGRES_LOCAL_DIR} -c fsync=off -c max_connections=200 -c ssl=on" \
      start >/dev/null || {
    cat "${POSTGRES_LOCAL_DIR}/server.log" >&2 2>/dev/null
    postgres_local_fail "pg_ctl start failed" || return 1
  }
  local waited=0
  until "${POSTGRES_LOCAL_BIN}/pg_isready" -q -h 127.0.0.1 -p "$port"; do
    if [ "$waited" -ge $((POSTGRES_LOCAL_START_TIMEOUT_SECS * 10)) ]; then
      cat "${POSTGRES_LOCAL_DIR}/server.log" >&2
      postgres_local_fail "not accepting connections on 127.0.0.1:${port} after ${POSTGRES_LOCAL_START_TIMEOUT_SECS}s" || return 1
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  "${POSTGRES_LOCAL_BIN}/psql" -q -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U "$owner" -d postgres \
      -c "CREATE ROLE ${POSTGRES_LOCAL_PASSWORD_ROLE} NOLOGIN" >/dev/null ||
    postgres_local_fail "cannot create the role ${POSTGRES_LOCAL_PASSWORD_ROLE}" || return 1
  export DATABASE_URL="postgres://${owner}@127.0.0.1:${port}/postgres"
  export LEDGER_TEST_PG_CA="${POSTGRES_LOCAL_DIR}/ca.crt" LEDGER_TEST_PG_OTHER_CA="${POSTGRES_LOCAL_DIR}/other-ca.crt"
  echo "PostgreSQL $("${POSTGRES_LOCAL_BIN}/pg_ctl" --version | awk '{print $3}') listening on 127.0.0.1:${port} (cluster ${POSTGRES_LOCAL_DIR})"
}

postgres_local_stop() {
  if [ -n "${POSTGRES_LOCAL_DIR:-}" ]; then
    if [ -f "${POSTGRES_LOCAL_DIR}/data/postmaster.pid" ]; then
      postgres_local_as_owner "${POSTGRES_LOCAL_BIN}/pg_ctl" -D "${POSTGRES_LOCAL_DIR}/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
    fi
    rm -rf "$POSTGRES_LOCAL_DIR"
    POSTGRES_LOCAL_DIR=
  fi
  return 0
}
