#!/usr/bin/env sh
# Usage: ensure-package.sh BINARY PACKAGE
# Real parts the tests use come from Debian's packages, never a downloaded build:
# chromium (browser tests), pgbouncer (tests/integration/test_pgbouncer.py; only the
# binary, started by the test on its own port) and faketime (clock-skew tests).
# Installs PACKAGE with apt when BINARY is missing; needs root, as in CI.
set -eu
binary="$1"
package="$2"
if [ -x "$binary" ]; then
    exit 0
fi
echo "ensure-package: $binary is missing; installing Debian's $package package" >&2
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y "$package"
