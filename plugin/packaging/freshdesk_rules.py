"""The Freshdesk app package's rules by id with their severity, and reading its JSON files.

Freshworks' own validator (`fdk validate`, `fdk pack`) cannot be installed here, so these are
the rules it is documented to apply to a platform 2.3 app, in Freshworks' developer docs and
its request-method sample apps (github.com/freshworks-developers/request-method-samples).
Two rules are this project's own: no inline script in the pages (a strict CSP stays possible)
and every local asset a page loads is in the package.
"""

from __future__ import annotations

import json
from typing import Any

from plugin.packaging.problems import Problem, Severity

RULES: dict[str, Severity] = {
    "layout.manifest_missing": "error",
    "layout.unexpected_path": "error",
    "layout.forbidden_file": "error",
    "manifest.invalid_json": "error",
    "manifest.not_object": "error",
    "manifest.duplicate_key": "error",
    "manifest.platform_version": "error",
    "manifest.product": "error",
    "manifest.engines": "error",
    "location.required": "error",
    "location.unknown": "error",
    "location.url": "error",
    "location.url_missing": "error",
    "location.icon": "error",
    "location.icon_missing": "error",
    "icon.not_svg": "error",
    "icon.size": "error",
    "requests.missing": "error",
    "requests.invalid_json": "error",
    "requests.not_object": "error",
    "requests.undeclared": "error",
    "requests.undefined": "error",
    "requests.unused": "warning",
    "requests.dynamic_name": "error",
    "template.schema": "error",
    "template.method": "error",
    "template.protocol": "error",
    "template.host": "error",
    "template.path": "error",
    "template.value_type": "error",
    "template.placeholder": "error",
    "template.unknown_iparam": "error",
    "template.secure_iparam": "error",
    "template.context_in_host": "error",
    "template.options": "error",
    "iparams.missing": "error",
    "iparams.invalid_json": "error",
    "iparams.not_object": "error",
    "iparams.field": "error",
    "iparams.type": "error",
    "iparams.boolean": "error",
    "iparams.insecure_secret": "error",
    "iparams.secure_default": "warning",
    "html.appclient": "error",
    "html.inline_script": "error",
    "html.missing_asset": "error",
    "package.symlink": "error",
    "package.service_host": "error",
}


def problem(rule: str, message: str) -> Problem:
    """Report a broken rule with the severity the rule is registered with."""
    return Problem(rule=rule, message=message, severity=RULES[rule])


def json_object(data: bytes, kind: str) -> tuple[dict[str, Any] | None, list[Problem]]:
    """Parse a JSON object, reporting invalid JSON, a non-object, and (for the manifest) keys
    given twice."""
    duplicates: list[str] = []

    def note_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                duplicates.append(key)
            result[key] = value
        return result

    name = {"manifest": "manifest.json", "requests": "config/requests.json"}.get(
        kind, "config/iparams.json"
    )
    try:
        parsed = json.loads(data.decode("utf-8"), object_pairs_hook=note_duplicates)
    except (ValueError, UnicodeDecodeError) as error:
        return None, [problem(f"{kind}.invalid_json", f"{name} is not valid JSON: {error}.")]
    if not isinstance(parsed, dict):
        return None, [problem(f"{kind}.not_object", f"{name} must hold a JSON object.")]
    problems = []
    if kind == "manifest":
        problems = [
            problem("manifest.duplicate_key", f"manifest.json has the key {key!r} twice.")
            for key in dict.fromkeys(duplicates)
        ]
    return parsed, problems
