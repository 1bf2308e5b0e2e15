#!/usr/bin/env bash
# Create .venv/ (Python 3.11+) and install Docket into it, with the extras named in $1.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
bash scripts/system-packages.sh
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "Docket needs Python 3.11 or newer (found $("$PY" --version))" >&2; exit 1; }
  "$PY" -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip
fi
# The model extra needs torch, installed on its own first (transformers declares it only as an
# extra of its own). TORCH_SPEC picks another build, e.g. "torch==2.13.0 --index-url ...cu128".
case ",$extras," in
  *,model,*) .venv/bin/pip install --quiet --disable-pip-version-check ${TORCH_SPEC:-torch==2.13.0} ;;
esac
spec="."
[ -n "$extras" ] && spec=".[$extras]"
.venv/bin/pip install --quiet --disable-pip-version-check -e "$spec"
