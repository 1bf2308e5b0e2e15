#!/usr/bin/env bash
# The scale-out test and bench (tests/test_scaleout.py, bench/scaleout.py) put Debian's nginx in
# front of several API processes. Installed here when missing and this user may run apt-get;
# otherwise say what to do (the test then fails saying the same).
set -euo pipefail
if command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; then
  exit 0
fi
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "installing nginx for the scale-out test (apt-get)…" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nginx-light >/dev/null \
    || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nginx-light >/dev/null; }
elif command -v apt-get >/dev/null && command -v sudo >/dev/null; then
  sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nginx-light >/dev/null
else
  echo "The scale-out test needs nginx: install Debian's 'nginx-light' (or 'nginx') package." >&2
fi
