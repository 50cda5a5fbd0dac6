#!/usr/bin/env bash
# Installs what the Redis store's tests run: Debian's redis-server and redis-tools (redis-cli).
# Idempotent: nothing is done when both are there. The tests start their own servers on free
# loopback ports and end them by PID; the system service is never used.
set -euo pipefail
if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then exit 0; fi
echo "setup-redis: installing redis-server and redis-tools" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq redis-server redis-tools >&2
# Debian starts its own service on 6379 at install; the tests never use it.
if command -v systemctl >/dev/null; then systemctl stop redis-server >/dev/null 2>&1 || true; fi
