"""Validate the Zendesk app package offline against Zendesk's rules: the manifest, its
locations and parameters, the translations and the assets beside it.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from plugin.packaging.problems import Problem, Severity

# Every rule the validator and builder apply, with its severity: one place to read them all.
RULES: dict[str, Severity] = {
    "manifest.missing": "error",
    "manifest.invalid_json": "error",
    "manifest.not_object": "error",
    "manifest.duplicate_key": "error",
    "manifest.boolean": "error",
    "manifest.string": "error",
    "author.required": "error",
    "author.object": "error",
    "author.name": "error",
    "author.email": "error",
    "author.url": "error",
    "defaultLocale.required": "error",
    "defaultLocale.format": "error",
    "frameworkVersion.required": "error",
    "frameworkVersion.value": "error",
    "domainWhitelist.type": "error",
    "location.required": "error",
    "location.object": "error",
    "location.product": "error",
    "location.unknown": "error",
    "location.option_unknown": "warning",
    "location.option_type": "error",
    "location.url": "error",
    "location.asset_missing": "error",
    "location.autoload_without_url": "error",
    "parameters.array": "error",
    "parameters.object": "error",
    "parameters.name": "error",
    "parameters.duplicate_name": "error",
    "parameters.reserved_name": "error",
    "parameters.unknown_type": "error",
    "parameters.boolean": "error",
    "parameters.hidden_required": "error",
    "parameters.scopes_not_secure": "error",
    "parameters.scopes_array": "error",
    "parameters.scopes_unknown": "error",
    "parameters.insecure_secret": "warning",
    "parameters.secure_default": "warning",
    "parameters.secure_without_scopes": "warning",
    "translations.missing": "error",
    "translations.invalid_json": "error",
    "translations.app_name": "error",
    "translations.public_fields": "error",
    "translations.parameter_label": "error",
    "assets.icon_missing": "error",
    "assets.logo_missing": "error",
    "assets.logo_not_png": "error",
    "assets.logo_size": "error",
    "package.forbidden_file": "error",
    "package.symlink": "error",
    "package.service_url": "error",
}

BOOLEAN_FIELDS = ("requirementsOnly", "marketingOnly", "singleInstall", "signedUrls", "private")
STRING_FIELDS = ("defaultLocale", "version", "frameworkVersion")
DEFAULT_LOCALE = re.compile(r"[a-z]{2,3}(-\w{2,3})?", re.ASCII)
FRAMEWORK_VERSION = "2.0"
PRODUCTS = ("support", "chat", "sell")
SUPPORT_LOCATIONS = frozenset(
    {
        "top_bar",
        "nav_bar",
        "ticket_sidebar",
        "new_ticket_sidebar",
        "user_sidebar",
        "organization_sidebar",
        "background",
        "modal",
        "ticket_editor",
        "system_top_bar",
    }
)
LOCATION_OPTIONS: dict[str, type] = {
    "url": str,
    "autoLoad": bool,
    "autoHide": bool,
    "flexible": bool,
    "signed": bool,
    "size": dict,
}
LOCATIONS_WITH_ICONS = ("nav_bar", "top_bar")
PARAMETER_TYPES = frozenset({"text", "checkbox", "url", "number", "multiline", "hidden", "oauth"})
PARAMETER_SCOPES = frozenset(
    {
        "header",
        "body",
        "url",
        "jwt_secret_key",
        "jwt_claim",
        "basic_auth_username",
        "basic_auth_password",
    }
)
# Zendesk's own heuristic (zendesk_apps_support SecureSettings) for settings that look secret.
SECRET_LIKE_NAME = re.compile(r"token|key|pwd|password", re.IGNORECASE)
FREE_TEXT_TYPES = frozenset({"text", "multiline"})
PRIVATE_APP_TRANSLATIONS = ("name",)
PUBLIC_APP_TRANSLATIONS = (
    "name",
    "short_description",
    "installation_instructions",
    "long_description",
)
LOGOS = {"assets/logo.png": (320, 320), "assets/logo-small.png": (128, 128)}
FORBIDDEN_SUFFIXES = frozenset({".zip", ".pdf", ".doc", ".docx", ".sh", ".jar", ".xls", ".xlsx"})
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def problem(rule: str, message: str) -> Problem:
    """Report a broken rule with the severity the rule is registered with."""
    return Problem(rule=rule, message=message, severity=RULES[rule])


def validate_manifest(manifest_text: str, *, files: Mapping[str, bytes]) -> list[Problem]:
    """Check a manifest and the package files beside it (paths relative to the zip root)."""
    duplicates: list[str] = []

    def note_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                duplicates.append(key)
            result[key] = value
        return result

    try:
        manifest = json.loads(manifest_text, object_pairs_hook=note_duplicates)
    except ValueError as error:
        return [problem("manifest.invalid_json", f"manifest.json is not valid JSON: {error}.")]
    if not isinstance(manifest, dict):
        return [problem("manifest.not_object", "manifest.json must hold a JSON object.")]

    problems = [
        problem("manifest.duplicate_key", f"manifest.json has the key {key!r} more than once.")
        for key in dict.fromkeys(duplicates)
    ]
    problems += _check_author(manifest)
    problems += _check_field_types(manifest)
    problems += _check_default_locale(manifest)
    problems += _check_framework(manifest)
    problems += _check_locations(manifest, files)
    problems += _check_parameters(manifest)
    problems += _check_translations(manifest, files)
    problems += _check_assets(manifest, files)
    problems += _check_file_types(files)
    return problems


def _check_author(manifest: dict[str, Any]) -> list[Problem]:
    author = manifest.get("author")
    if author is None:
        return [problem("author.required", "manifest.json needs an author with name and email.")]
    if not isinstance(author, dict):
        return [problem("author.object", "author must be an object with name, email and url.")]
    problems = [
        problem(f"author.{field}", f"author.{field} is required and must be a non-empty string.")
        for field in ("name", "email")
        if not _non_empty_string(author.get(field))
    ]
    if author.get("url") is not None and not _is_http_url(author["url"]):
        problems.append(problem("author.url", "author.url must be an http(s) URL with a host."))
    return problems


def _check_field_types(manifest: dict[str, Any]) -> list[Problem]:
    problems = [
        problem("manifest.boolean", f"{field} must be true or false, not {manifest[field]!r}.")
        for field in BOOLEAN_FIELDS
        if field in manifest and not isinstance(manifest[field], bool)
    ]
    problems += [
        problem("manifest.string", f"{field} must be a string, not {manifest[field]!r}.")
        for field in STRING_FIELDS
        if manifest.get(field) is not None and not isinstance(manifest[field], str)
    ]
    whitelist = manifest.get("domainWhitelist")
    if whitelist is not None and not (
        isinstance(whitelist, list) and all(isinstance(domain, str) for domain in whitelist)
    ):
        problems.append(
            problem("domainWhitelist.type", "domainWhitelist must be an array of strings.")
        )
    return problems


def _check_default_locale(manifest: dict[str, Any]) -> list[Problem]:
    locale = manifest.get("defaultLocale")
    if locale is None:
        return [problem("defaultLocale.required", "manifest.json needs a defaultLocale.")]
    if isinstance(locale, str) and not DEFAULT_LOCALE.fullmatch(locale):
        return [
            problem(
                "defaultLocale.format",
                f"defaultLocale {locale!r} is not a locale like en or pt-br.",
            )
        ]
    return []


def _check_framework(manifest: dict[str, Any]) -> list[Problem]:
    if manifest.get("requirementsOnly") is True or manifest.get("marketingOnly") is True:
        return []
    problems = []
    if not manifest.get("location"):
        problems.append(problem("location.required", "manifest.json needs a location."))
    version = manifest.get("frameworkVersion")
    if version is None:
        problems.append(
            problem("frameworkVersion.required", "manifest.json needs frameworkVersion.")
        )
    elif isinstance(version, str) and version != FRAMEWORK_VERSION:
        problems.append(
            problem("frameworkVersion.value", f"frameworkVersion must be {FRAMEWORK_VERSION!r}.")
        )
    return problems


def _check_locations(manifest: dict[str, Any], files: Mapping[str, bytes]) -> list[Problem]:
    location = manifest.get("location")
    if location is None:
        return []
    if not isinstance(location, dict):
        return [problem("location.object", "location must be an object keyed by product.")]
    problems = []
    for product, places in location.items():
        if product not in PRODUCTS:
            problems.append(problem("location.product", f"location.{product} is not a product."))
            continue
        if not isinstance(places, dict):
            problems.append(problem("location.object", f"location.{product} must be an object."))
            continue
        for place, options in places.items():
            where = f"location.{product}.{place}"
            if product == "support" and place not in SUPPORT_LOCATIONS:
                problems.append(problem("location.unknown", f"{where} is not a Support location."))
                continue
            problems += _check_location_options(where, options, files)
    return problems


def _check_location_options(where: str, options: Any, files: Mapping[str, bytes]) -> list[Problem]:
    if isinstance(options, str):
        # A bare string is Zendesk's shorthand for {"url": ...}.
        options = {"url": options}
    if not isinstance(options, dict):
        return [problem("location.object", f"{where} must be an object of options or a url.")]
    problems = []
    for key, value in options.items():
        expected = LOCATION_OPTIONS.get(key)
        if expected is None:
            problems.append(problem("location.option_unknown", f"{where}.{key} is not an option."))
        elif not isinstance(value, expected):
            kind = {bool: "true or false", str: "a string", dict: "an object"}[expected]
            problems.append(problem("location.option_type", f"{where}.{key} must be {kind}."))
    url = options.get("url")
    if isinstance(url, str) and url:
        problems += _check_location_url(where, url, files)
    elif options.get("autoLoad", True) is not False:
        # Zendesk loads locations unless told not to, and a loaded location needs a page.
        problems.append(
            problem("location.autoload_without_url", f"{where} loads automatically but has no url.")
        )
    return problems


def _check_location_url(where: str, url: str, files: Mapping[str, bytes]) -> list[Problem]:
    if "{{setting." in url:
        return []
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return [problem("location.url", f"{where}.url {url!r} is not a URL.")]
    if parts.scheme:
        if (parts.scheme == "https" and host) or host == "localhost":
            return []
        return [problem("location.url", f"{where}.url {url!r} must be https (or on localhost).")]
    if not parts.path.startswith("assets/") or parts.netloc:
        return [
            problem("location.url", f"{where}.url {url!r} must be absolute or start with assets/.")
        ]
    if parts.path not in files:
        return [problem("location.asset_missing", f"{where}.url points at missing {parts.path}.")]
    return []


def _check_parameters(manifest: dict[str, Any]) -> list[Problem]:
    parameters = manifest.get("parameters")
    if parameters is None:
        return []
    if not isinstance(parameters, list):
        return [problem("parameters.array", "parameters must be an array of objects.")]
    problems = []
    seen: set[str] = set()
    for index, parameter in enumerate(parameters):
        if not isinstance(parameter, dict):
            problems.append(problem("parameters.object", f"parameters[{index}] must be an object."))
            continue
        name = parameter.get("name")
        if isinstance(name, str) and name.strip():
            where = f"parameter {name!r}"
            if name in seen:
                problems.append(problem("parameters.duplicate_name", f"{where} is defined twice."))
            seen.add(name)
            if name == "name":
                problems.append(
                    problem("parameters.reserved_name", "a parameter may not be called 'name'.")
                )
        else:
            where = f"parameters[{index}]"
            problems.append(problem("parameters.name", f"{where} needs a name."))
        problems += _check_parameter(where, name, parameter)
    return problems


def _check_parameter(where: str, name: Any, parameter: dict[str, Any]) -> list[Problem]:
    problems = []
    kind = parameter.get("type", "text")
    if kind not in PARAMETER_TYPES:
        problems.append(problem("parameters.unknown_type", f"{where} has unknown type {kind!r}."))
    for flag in ("required", "secure"):
        if flag in parameter and not isinstance(parameter[flag], bool):
            problems.append(problem("parameters.boolean", f"{where}.{flag} must be true or false."))
    secure = parameter.get("secure") is True
    if kind == "hidden" and parameter.get("required") is True:
        problems.append(problem("parameters.hidden_required", f"hidden {where} can't be required."))
    if "scopes" in parameter:
        scopes = parameter["scopes"]
        if not secure:
            problems.append(
                problem("parameters.scopes_not_secure", f"{where} has scopes but is not secure.")
            )
        if not isinstance(scopes, list) or not scopes:
            problems.append(
                problem("parameters.scopes_array", f"{where}.scopes must be a non-empty array.")
            )
        else:
            unknown = [s for s in scopes if not isinstance(s, str) or s not in PARAMETER_SCOPES]
            if unknown:
                problems.append(
                    problem("parameters.scopes_unknown", f"{where} has unknown scopes {unknown!r}.")
                )
    elif secure:
        problems.append(
            problem(
                "parameters.secure_without_scopes",
                f"secure {where} has no scopes, so Zendesk may insert it anywhere in a request.",
            )
        )
    if secure and "default" in parameter:
        problems.append(
            problem("parameters.secure_default", f"secure {where} should not have a default.")
        )
    if (
        not secure
        and isinstance(name, str)
        and SECRET_LIKE_NAME.search(name)
        and kind in FREE_TEXT_TYPES
    ):
        problems.append(
            problem("parameters.insecure_secret", f"{where} looks like a secret but isn't secure.")
        )
    return problems


def _check_translations(manifest: dict[str, Any], files: Mapping[str, bytes]) -> list[Problem]:
    problems = []
    locale = manifest.get("defaultLocale")
    if (
        isinstance(locale, str)
        and DEFAULT_LOCALE.fullmatch(locale)
        and f"translations/{locale}.json" not in files
    ):
        problems.append(problem("translations.missing", f"translations/{locale}.json is missing."))
    parsed: dict[str, dict[str, Any]] = {}
    for path, data in files.items():
        if not (path.startswith("translations/") and path.endswith(".json")):
            continue
        try:
            content = json.loads(data.decode("utf-8"))
        except ValueError:
            content = None
        if not isinstance(content, dict):
            problems.append(
                problem("translations.invalid_json", f"{path} is not a JSON object in UTF-8.")
            )
            continue
        parsed[path] = content
    english = parsed.get("translations/en.json")
    if english is not None:
        problems += _check_english(manifest, english)
    return problems


def _check_english(manifest: dict[str, Any], english: dict[str, Any]) -> list[Problem]:
    app = english.get("app")
    app = app if isinstance(app, dict) else {}
    problems = []
    private = manifest.get("private", True) is not False
    required = PRIVATE_APP_TRANSLATIONS if private else PUBLIC_APP_TRANSLATIONS
    # Zendesk still accepts the older "description" in place of short_description.
    present = {"short_description" if key == "description" else key for key in app}
    missing = [key for key in required if key not in present]
    if missing:
        rule = "translations.app_name" if private else "translations.public_fields"
        fields = ", ".join(f"app.{key}" for key in missing)
        problems.append(problem(rule, f"translations/en.json is missing {fields}."))

    entries = app.get("parameters")
    entries = entries if isinstance(entries, dict) else {}
    parameters = manifest.get("parameters")
    declared = [
        parameter["name"]
        for parameter in (parameters if isinstance(parameters, list) else [])
        if isinstance(parameter, dict) and _non_empty_string(parameter.get("name"))
    ]
    for name in dict.fromkeys([*declared, *entries]):
        entry = entries.get(name)
        if not (isinstance(entry, dict) and _non_empty_string(entry.get("label"))):
            problems.append(
                problem(
                    "translations.parameter_label",
                    f"translations/en.json needs app.parameters.{name}.label.",
                )
            )
    return problems


def _check_assets(manifest: dict[str, Any], files: Mapping[str, bytes]) -> list[Problem]:
    problems = []
    location = manifest.get("location")
    support = location.get("support") if isinstance(location, dict) else None
    if isinstance(support, dict):
        for place in LOCATIONS_WITH_ICONS:
            icon = f"assets/icon_{place}.svg"
            if place in support and icon not in files:
                problems.append(problem("assets.icon_missing", f"{place} needs the icon {icon}."))
    for path, (width, height) in LOGOS.items():
        if path not in files:
            problems.append(problem("assets.logo_missing", f"{path} is missing."))
            continue
        size = png_size(files[path])
        if size is None:
            problems.append(problem("assets.logo_not_png", f"{path} is not a PNG image."))
        elif size != (width, height):
            problems.append(
                problem(
                    "assets.logo_size",
                    f"{path} is {size[0]}x{size[1]} but must be {width}x{height}.",
                )
            )
    return problems


def _check_file_types(files: Mapping[str, bytes]) -> list[Problem]:
    return [
        problem("package.forbidden_file", f"{path}: Zendesk refuses this type of file in apps.")
        for path in files
        if Path(path).suffix.lower() in FORBIDDEN_SUFFIXES
    ]


def png_size(data: bytes) -> tuple[int, int] | None:
    """Read width and height from a PNG's header, or None when the bytes are not a PNG."""
    if len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _non_empty_string(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _is_http_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parts = urlsplit(value)
        return parts.scheme in {"http", "https"} and bool(parts.hostname)
    except ValueError:
        return False
