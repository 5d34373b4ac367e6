#!/usr/bin/env sh
# The dashboard's browser tests drive Debian's Chromium (never a downloaded browser).
# Installs it with apt when /usr/bin/chromium is missing; needs root, as in CI.
set -eu
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
echo "ensure-chromium: /usr/bin/chromium is missing; installing Debian's chromium package" >&2
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
