#!/usr/bin/env bash
# Make sure the prometheus and promtool binaries are on this machine, for the Prometheus source tests.
# The tests start their own server on 127.0.0.1 with a throwaway data directory; this script only
# installs. The package's own service is never started: its default listens on every interface.
set -euo pipefail

if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
    exit 0
fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing Prometheus (Debian package prometheus) for the Prometheus source tests" >&2
    added_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        # With exit code 101, invoke-rc.d does not start the service the package installs.
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        added_policy=yes
    fi
    trap 'if [ -n "$added_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi' EXIT

    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    command -v promtool >/dev/null
    promtool tsdb create-blocks-from openmetrics --help >/dev/null 2>&1 || {
        echo "promtool has no 'tsdb create-blocks-from openmetrics'; Prometheus 2.24 or newer is needed" >&2
        exit 1
    }
    exit 0
fi

echo "Prometheus binaries (prometheus, promtool) not found. Install them, e.g." >&2
echo "'sudo apt-get install prometheus', or put a release's binaries on PATH." >&2
exit 1
