#!/usr/bin/env bash
# Docket's translations (gettext catalogs in docket/translations/, one for the API, the dashboard,
# the CLI and webhooks):
#   bash scripts/i18n.sh extract   # collect the marked strings into docket/translations/messages.pot
#   bash scripts/i18n.sh update    # extract, then merge new strings into every locale's messages.po
#   bash scripts/i18n.sh compile   # messages.po -> messages.mo (shipped: commit both after editing a .po)
#   bash scripts/i18n.sh init LOCALE   # start a new locale's catalog
# The .po and .mo files are both under version control (tests/test_i18n.py checks they agree).
# Strings of the dashboard's JavaScript live in the templates (data-i18n attributes), rule
# messages in rules/*.yaml ({locale: template} maps).
set -euo pipefail
cd "$(dirname "$0")/.."
PYBABEL="${PYBABEL:-.venv/bin/pybabel}"
DIR=docket/translations
POT="$DIR/messages.pot"
extract() {
  "$PYBABEL" -q extract -F babel.cfg -k _ -k t -k gettext -k i18n.N_ -k ngettext:1,2 -k lazy_gettext -k N_ -k _l \
    --no-location --sort-output --project Docket --copyright-holder "Docket" -o "$POT" .
}
case "${1:-compile}" in
  extract) extract ;;
  update) extract; "$PYBABEL" -q update -i "$POT" -d "$DIR" --no-fuzzy-matching --ignore-obsolete ;;
  compile) "$PYBABEL" -q compile -d "$DIR" ;;
  init) extract; "$PYBABEL" -q init -i "$POT" -d "$DIR" -l "${2:?locale}" ;;
  *) echo "usage: $0 extract|update|compile|init LOCALE" >&2; exit 2 ;;
esac
