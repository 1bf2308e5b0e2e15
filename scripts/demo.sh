#!/usr/bin/env bash
# Set up .venv/ and run the main job on the embedded default (SQLite + Docket's own Redis,
# no servers needed): the bundled samples go through queue, worker and database, and the
# decisions are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export DOCKET_DATA_DIR="${DOCKET_DATA_DIR:-$PWD/docket-data}"
status=0
echo "== expense_policy: receipts" >&2
.venv/bin/docket analyze samples/receipt-en.png samples/receipt-zh.png --rule expense_policy || status=$?
echo "== contract_review: contract" >&2
.venv/bin/docket analyze samples/contract-en.pdf --rule contract_review || status=$?
echo "== screenshot_moderation: chat screenshot" >&2
.venv/bin/docket analyze samples/screenshot-zh.png --rule screenshot_moderation || status=$?
cat >&2 <<'EOF2'
== review these decisions in the browser:
   .venv/bin/docket keys create --role reviewer --tenant default   # prints a key (ends the keyless first-run mode)
   .venv/bin/docket serve --port 8000                              # then open http://127.0.0.1:8000/dashboard
EOF2
exit $status
