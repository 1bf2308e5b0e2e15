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
# A Chinese VAT e-invoice (OFD) and a railway ticket (real ones: tests/data/README.md). Their
# decisions are printed in the environment's language: LANG=zh_CN.UTF-8 bash scripts/demo.sh
# prints them in 简体中文 (or: .venv/bin/docket --lang zh-Hans analyze ...).
echo "== expense_policy: 增值税电子发票 (OFD) and 火车票" >&2
.venv/bin/docket analyze tests/data/cn-fapiao-dev/files/renoyuan__00008006.ofd \
  tests/data/cn-train-tickets-dev/images/20190827_163606.jpg --rule expense_policy || status=$?
cat >&2 <<'EOF2'
== review these decisions in the browser:
   .venv/bin/docket keys create --role reviewer --tenant default   # prints a key (ends the keyless first-run mode)
   .venv/bin/docket serve --port 8000                              # then open http://127.0.0.1:8000/dashboard
EOF2
exit $status
