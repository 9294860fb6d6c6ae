#!/usr/bin/env bash
# Make sure the PostgreSQL server binaries are on this machine, for the store tests.
# The tests start their own server on 127.0.0.1 as an unprivileged user; this script only installs.
set -euo pipefail

find_initdb() {
    command -v initdb 2>/dev/null && return 0
    ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1
}

if [ -n "$(find_initdb)" ]; then
    if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
        useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    fi
    exit 0
fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing PostgreSQL server (Debian package postgresql) for the store tests" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    exit 0
fi

echo "PostgreSQL server binaries (initdb) not found. Install them, e.g. 'sudo apt-get install postgresql'," >&2
echo "or set COSTWARDEN_TEST_POSTGRES_URL to an empty test database to use instead." >&2
exit 1
