"""The Freshdesk app page's own words (what it says before or without the service's answer),
in every language of the catalogs, as the package's `app/scripts/messages.js`.

The packaged app cannot read the service's catalogs at run time, so the build writes them in:
the messages are marked here for `pybabel extract` and translated in translations/ like the
rest; the page picks the agent's language from Freshdesk (docs/i18n.md).
"""

from __future__ import annotations

import json
from pathlib import Path

from babel.messages.pofile import read_po

from plugin.domain.wording import N_

# By the key app.js asks for: its English, marked for the catalogs.
MESSAGES = {
    "loading": N_("Looking up this customer…"),
    "busy": N_(
        "Regulars has been opened very often in this helpdesk this minute. Reopen it in a minute."
    ),
    "unreachable": N_("Regulars could not reach its service. Reopen the app in a moment."),
    "unreadable": N_("Regulars could not read this ticket from Freshdesk. Reopen the app."),
    "not_sent": N_("Not sent: Regulars could not reach its service. Try again."),
    "copied": N_("Copied"),
    "outside": N_("Regulars runs inside Freshdesk: open it from a ticket."),
}
SCRIPT_PATH = "app/scripts/messages.js"


def app_messages(translations: Path) -> dict[str, dict[str, str]]:
    """The messages by language ("en", and each catalog's); an untranslated one stays English."""
    found = {"en": {key: str(text) for key, text in MESSAGES.items()}}
    for po_file in sorted(translations.glob("*/LC_MESSAGES/messages.po")):
        with po_file.open("rb") as handle:
            catalog = read_po(handle)
        language = po_file.parent.parent.name
        found[language] = {}
        for key, text in MESSAGES.items():
            entry = catalog.get(str(text))
            said = entry.string if entry is not None and not entry.fuzzy else ""
            found[language][key] = said if isinstance(said, str) and said else str(text)
    return found


def messages_script(translations: Path) -> bytes:
    """`app/scripts/messages.js`: the messages as one global the page reads (no code, no eval)."""
    data = json.dumps(app_messages(translations), ensure_ascii=False, indent=1, sort_keys=True)
    header = "/* Built from translations/ by plugin/packaging/freshdesk_messages.py. */\n"
    return (header + f"window.REGULARS_MESSAGES = {data};\n").encode()
