#!/usr/bin/env bash
# After marking or changing strings for translation: extract them from the code and templates
# (translations/messages.pot), merge them into every language's catalog (keeping what is
# translated; a new or changed entry comes out untranslated or fuzzy), and compile. Then
# translate the new and fuzzy entries of translations/*/LC_MESSAGES/messages.po and run this
# again; tests/i18n fails while any entry is missing or fuzzy. See docs/i18n.md.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

BABEL=.venv/bin/pybabel
if [ ! -x "$BABEL" ]; then
    echo "translations.sh: no $BABEL: run scripts/setup.sh first" >&2
    exit 1
fi

"$BABEL" extract -F babel.cfg -k lazy_gettext --no-location --sort-output \
    --project=Regulars -o translations/messages.pot .
"$BABEL" update -i translations/messages.pot -d translations
"$BABEL" compile -d translations --statistics
