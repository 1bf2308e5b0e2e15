#!/usr/bin/env bash
# Install everything the tests need (the venv, and Chromium for the dashboard's browser tests),
# then run the whole suite. Postgres and Redis: the ones on
# 127.0.0.1 when they answer, else throwaway servers the tests start from local binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh test,model
bash scripts/browser.sh
bash scripts/nginx.sh
exec .venv/bin/python -m pytest "$@"
