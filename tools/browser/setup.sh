#!/bin/sh
# The browser the dashboard tests drive: Debian's chromium + chromium-driver (see
# docs/dashboard.md). Installs them when missing (CI runs as root); prints the two paths.
# Nothing is downloaded from outside the distribution's package registry.
set -eu
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "chromium/chromedriver missing and not root: run 'sudo $0' (or apt-get install -y chromium chromium-driver)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends chromium chromium-driver >/dev/null 2>&1 || {
        apt-get update >/dev/null
        apt-get install -y --no-install-recommends chromium chromium-driver >/dev/null
    }
fi
echo /usr/bin/chromium
echo /usr/bin/chromedriver
