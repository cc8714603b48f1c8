"""Validate the Freshdesk app package offline against the Freshworks platform's rules, and build it.

Freshworks' own validator (`fdk validate`, `fdk pack`) cannot be installed here, so these are
the rules it is documented to apply to a platform 2.3 app, in Freshworks' developer docs and
its request-method sample apps (github.com/freshworks-developers/request-method-samples):
the layout (`manifest.json`, `app/`, `config/`), the manifest's schema, request templates
(`config/requests.json`: https, a host that is a domain name and not an IP, secure iparams only
in headers, every template the code invokes declared in the manifest), installation parameters
(`config/iparams.json`), and pages that load Freshworks' client (`{{{appclient}}}`). Two rules
are this project's own: no inline script in the pages (a strict CSP stays possible) and every
local asset a page loads is in the package.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from typing import Any

from plugin.packaging.zendesk import (
    REPO_ROOT,
    Problem,
    Severity,
    collect_package_files,
    has_errors,
    write_zip,
)

PACKAGE_DIR = Path("packaging", "freshdesk")
# The banner's styles ship in the package from the one copy the service uses.
SHARED_FILES = {"app/styles/sidebar.css": Path("static", "css", "sidebar.css")}
SERVICE_HOST_IPARAM = "service_host"

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

PLATFORM_VERSION = "2.3"
PRODUCTS = frozenset({"freshdesk", "freshservice", "freshsales", "freshchat", "freshcaller"})
LOCATIONS = frozenset(
    {
        "ticket_sidebar",
        "ticket_requester_info",
        "ticket_top_navigation",
        "ticket_conversation_editor",
        "ticket_background",
        "new_ticket_background",
        "new_ticket_requester_info",
        "contact_sidebar",
        "full_page_app",
        "cti_global_sidebar",
        "time_entry_background",
    }
)
# Background locations run no visible page, so they have no icon.
ICONLESS_LOCATIONS = frozenset(
    {"ticket_background", "new_ticket_background", "time_entry_background"}
)
TOP_LEVEL = frozenset({"manifest.json", "README.md"})
TOP_LEVEL_DIRS = frozenset({"app", "config", "server"})
FORBIDDEN_PARTS = frozenset({"node_modules", ".git", ".env", "coverage"})
FORBIDDEN_SUFFIXES = frozenset({".zip"})
ENGINE_MINIMUMS = {"node": 18, "fdk": 9}
_VERSION = re.compile(r"(\d+)(\.(\d+|x)){0,2}")
ICON_SIZE = 64

METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH"})
SCHEMA_KEYS = frozenset({"method", "protocol", "host", "path", "headers", "query"})
OPTION_RANGES = {"maxAttempts": (1, 5), "retryDelay": (1, 1500)}
OPTION_FLAGS = frozenset({"isOAuth"})
IPARAM_TYPES = frozenset(
    {
        "text",
        "paragraph",
        "dropdown",
        "radio",
        "checkbox",
        "multiselect",
        "number",
        "phone_number",
        "date",
        "url",
        "email",
        "domain",
        "api_key",
    }
)
SECRET_LIKE_NAME = re.compile(r"secret|token|key|password|pwd", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"<%=(.*?)%>", re.DOTALL)
_VARIABLE = re.compile(r"\b(iparam|context)\.([A-Za-z_]\w*)")
_INVOKE = re.compile(r"invokeTemplate\(\s*(?:(['\"])([^'\"]*)\1|(?=[^\s)]))")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_TLD = re.compile(r"[a-z]{2,63}")
_SVG_TAG = re.compile(r"<svg\b([^>]*)>", re.IGNORECASE)
_ATTRIBUTE = re.compile(r"([\w:-]+)\s*=\s*(['\"])(.*?)\2")


def problem(rule: str, message: str) -> Problem:
    """Report a broken rule with the severity the rule is registered with."""
    return Problem(rule=rule, message=message, severity=RULES[rule])


def validate_package(files: Mapping[str, bytes]) -> list[Problem]:
    """Check a package given as its files, keyed by their paths in the zip."""
    problems = _check_layout(files)
    if "manifest.json" not in files:
        return [problem("layout.manifest_missing", "manifest.json is missing."), *problems]
    manifest, manifest_problems = _json_object(files["manifest.json"], "manifest")
    problems += manifest_problems
    if manifest is None:
        return problems
    iparams, iparam_problems = _iparams(files)
    problems += iparam_problems
    problems += _check_manifest(manifest)
    freshdesk = _product(manifest)
    problems += _check_locations(freshdesk, files)
    problems += _check_requests(freshdesk, files, iparams)
    problems += _check_pages(files)
    return problems


# --- Layout ----------------------------------------------------------------------------------


def _check_layout(files: Mapping[str, bytes]) -> list[Problem]:
    problems = []
    for path in files:
        parts = PurePosixPath(path).parts
        if any(part in FORBIDDEN_PARTS for part in parts) or (
            PurePosixPath(path).suffix.lower() in FORBIDDEN_SUFFIXES
        ):
            problems.append(problem("layout.forbidden_file", f"{path} must not be packaged."))
        elif not (path in TOP_LEVEL or (len(parts) > 1 and parts[0] in TOP_LEVEL_DIRS)):
            problems.append(
                problem(
                    "layout.unexpected_path",
                    f"{path} is outside the app layout (manifest.json, app/, config/, server/).",
                )
            )
    return problems


def _json_object(data: bytes, kind: str) -> tuple[dict[str, Any] | None, list[Problem]]:
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


# --- The manifest ----------------------------------------------------------------------------


def _check_manifest(manifest: dict[str, Any]) -> list[Problem]:
    problems = []
    if manifest.get("platform-version") != PLATFORM_VERSION:
        problems.append(
            problem(
                "manifest.platform_version",
                f"platform-version must be {PLATFORM_VERSION!r}, the layout this app uses.",
            )
        )
    products = manifest.get("product")
    if not isinstance(products, dict) or not isinstance(products.get("freshdesk"), dict):
        problems.append(problem("manifest.product", "product.freshdesk must be an object."))
    else:
        problems += [
            problem("manifest.product", f"product.{name} is not a Freshworks product.")
            for name in products
            if name not in PRODUCTS
        ]
    engines = manifest.get("engines")
    engines = engines if isinstance(engines, dict) else {}
    for engine, minimum in ENGINE_MINIMUMS.items():
        version = engines.get(engine)
        match = _VERSION.fullmatch(version) if isinstance(version, str) else None
        if match is None or int(match.group(1)) < minimum:
            problems.append(
                problem(
                    "manifest.engines",
                    f"engines.{engine} must be a version of {engine} {minimum} or later, such as "
                    f"{minimum}.x.",
                )
            )
    return problems


def _product(manifest: dict[str, Any]) -> dict[str, Any]:
    products = manifest.get("product")
    freshdesk = products.get("freshdesk") if isinstance(products, dict) else None
    return freshdesk if isinstance(freshdesk, dict) else {}


def _check_locations(freshdesk: dict[str, Any], files: Mapping[str, bytes]) -> list[Problem]:
    locations = freshdesk.get("location")
    if not isinstance(locations, dict) or not locations:
        return [problem("location.required", "product.freshdesk.location must name a location.")]
    problems = []
    for name, options in locations.items():
        where = f"location.{name}"
        if name not in LOCATIONS:
            problems.append(problem("location.unknown", f"{where} is not a Freshdesk location."))
            continue
        options = options if isinstance(options, dict) else {}
        problems += _check_app_file(where, "url", options.get("url"), files, suffix=".html")
        if name not in ICONLESS_LOCATIONS:
            icon = options.get("icon")
            icon_problems = _check_app_file(where, "icon", icon, files, suffix=".svg")
            problems += icon_problems
            if not icon_problems and isinstance(icon, str):
                problems += _check_icon(f"app/{icon}", files[f"app/{icon}"])
    return problems


def _check_app_file(
    where: str, key: str, value: object, files: Mapping[str, bytes], *, suffix: str
) -> list[Problem]:
    rule = "location.url" if key == "url" else "location.icon"
    if not isinstance(value, str) or not value:
        return [problem(rule, f"{where}.{key} is required.")]
    path = PurePosixPath(value)
    if "://" in value or path.is_absolute() or ".." in path.parts or path.suffix != suffix:
        return [
            problem(rule, f"{where}.{key} {value!r} must be a {suffix} file's path inside app/.")
        ]
    if f"app/{value}" not in files:
        return [problem(f"{rule}_missing", f"{where}.{key} points at missing app/{value}.")]
    return []


def _check_icon(path: str, data: bytes) -> list[Problem]:
    tag = _SVG_TAG.search(data.decode("utf-8", errors="replace"))
    if tag is None:
        return [problem("icon.not_svg", f"{path} is not an SVG image.")]
    attributes = {name.lower(): value for name, _, value in _ATTRIBUTE.findall(tag.group(1))}
    size = (
        attributes.get("width", "").removesuffix("px"),
        attributes.get("height", "").removesuffix("px"),
    )
    view_box = attributes.get("viewbox", "").split()
    if size == (str(ICON_SIZE), str(ICON_SIZE)) or (
        not any(size) and view_box[2:] == [str(ICON_SIZE), str(ICON_SIZE)]
    ):
        return []
    return [problem("icon.size", f"{path} must be {ICON_SIZE}x{ICON_SIZE}.")]


# --- Installation parameters -----------------------------------------------------------------


def _iparams(files: Mapping[str, bytes]) -> tuple[dict[str, dict[str, Any]], list[Problem]]:
    """Return the installation parameters by name, and what is wrong with them."""
    data = files.get("config/iparams.json")
    if data is None:
        return {}, [problem("iparams.missing", "config/iparams.json is missing.")]
    parsed, problems = _json_object(data, "iparams")
    if parsed is None:
        return {}, problems
    iparams: dict[str, dict[str, Any]] = {}
    for name, spec in parsed.items():
        where = f"iparam {name!r}"
        if not isinstance(spec, dict):
            problems.append(problem("iparams.field", f"{where} must be an object."))
            continue
        iparams[name] = spec
        if not isinstance(spec.get("display_name"), str) or not spec["display_name"].strip():
            problems.append(problem("iparams.field", f"{where} needs a display_name."))
        if spec.get("type") not in IPARAM_TYPES:
            problems.append(
                problem("iparams.type", f"{where} has unknown type {spec.get('type')!r}.")
            )
        for flag in ("required", "secure"):
            if flag in spec and not isinstance(spec[flag], bool):
                problems.append(
                    problem("iparams.boolean", f"{where}.{flag} must be true or false.")
                )
        secure = spec.get("secure") is True
        if not secure and SECRET_LIKE_NAME.search(name) and spec.get("type") in {"text", "api_key"}:
            problems.append(
                problem(
                    "iparams.insecure_secret",
                    f"{where} looks like a secret but is not secure: every agent's browser could "
                    "read it.",
                )
            )
        if secure and "default_value" in spec:
            problems.append(
                problem("iparams.secure_default", f"secure {where} should not have a default.")
            )
    return iparams, problems


# --- Request templates -----------------------------------------------------------------------


def _check_requests(
    freshdesk: dict[str, Any], files: Mapping[str, bytes], iparams: Mapping[str, dict[str, Any]]
) -> list[Problem]:
    declared = freshdesk.get("requests")
    declared = declared if isinstance(declared, dict) else {}
    invoked, problems = _invoked_templates(files)
    data = files.get("config/requests.json")
    if data is None:
        if declared or invoked:
            problems.append(problem("requests.missing", "config/requests.json is missing."))
        return problems
    templates, template_problems = _json_object(data, "requests")
    problems += template_problems
    templates = templates or {}
    for name in sorted(invoked - set(declared)):
        problems.append(
            problem(
                "requests.undeclared",
                f"the app invokes template {name!r} but product.freshdesk.requests does not "
                "declare it.",
            )
        )
    for name in sorted(set(declared) - set(templates)):
        problems.append(
            problem(
                "requests.undefined",
                f"the manifest declares template {name!r} but config/requests.json has none.",
            )
        )
    for name in sorted(set(templates) - invoked):
        problems.append(problem("requests.unused", f"template {name!r} is never invoked."))
    for name, template in templates.items():
        problems += _check_template(name, template, iparams)
    return problems


def _invoked_templates(files: Mapping[str, bytes]) -> tuple[set[str], list[Problem]]:
    """Find the template names the app's code invokes; a name not written out is a problem."""
    names: set[str] = set()
    problems = []
    for path, data in files.items():
        if not path.endswith((".js", ".html")) or not path.startswith(("app/", "server/")):
            continue
        for match in _INVOKE.finditer(data.decode("utf-8", errors="replace")):
            if match.group(1) is None:
                problems.append(
                    problem(
                        "requests.dynamic_name",
                        f"{path} invokes a template by a computed name: write the name out so "
                        "it can be checked against the manifest.",
                    )
                )
            else:
                names.add(match.group(2))
    return names, problems


def _check_template(
    name: str, template: object, iparams: Mapping[str, dict[str, Any]]
) -> list[Problem]:
    where = f"template {name!r}"
    if not isinstance(template, dict) or not isinstance(template.get("schema"), dict):
        return [problem("template.schema", f"{where} needs a schema object.")]
    schema: dict[str, Any] = template["schema"]
    problems = [
        problem("template.schema", f"{where}.schema.{key} is not a request schema field.")
        for key in schema
        if key not in SCHEMA_KEYS
    ]
    if schema.get("method") not in METHODS:
        problems.append(
            problem(
                "template.method", f"{where} method must be one of {', '.join(sorted(METHODS))}."
            )
        )
    if schema.get("protocol", "https") != "https":
        problems.append(
            problem(
                "template.protocol", f"{where} must use https: apps cannot be packed with http."
            )
        )
    problems += _check_host(where, schema.get("host"), iparams)
    path = schema.get("path", "/")
    if not isinstance(path, str) or not path.startswith("/") or "?" in path or "#" in path:
        problems.append(
            problem("template.path", f"{where} path must start with / and carry no query.")
        )
    else:
        problems += _check_values(where, "path", {"path": path}, iparams, allow_secure=False)
    for field_name, allowed in (("headers", (str,)), ("query", (str, int, float))):
        values = schema.get(field_name, {})
        if not isinstance(values, dict) or not all(
            isinstance(v, allowed) and not isinstance(v, bool) for v in values.values()
        ):
            kind = "strings" if field_name == "headers" else "strings or numbers"
            problems.append(
                problem("template.value_type", f"{where} {field_name} must map names to {kind}.")
            )
            continue
        problems += _check_values(
            where, field_name, values, iparams, allow_secure=field_name == "headers"
        )
    return problems + _check_options(where, template)


def _check_host(where: str, host: object, iparams: Mapping[str, dict[str, Any]]) -> list[Problem]:
    if not isinstance(host, str) or not host:
        return [problem("template.schema", f"{where} needs a host.")]
    problems = _check_values(where, "host", {"host": host}, iparams, allow_secure=False)
    if any(kind == "context" for kind, _ in _VARIABLE.findall(host)):
        problems.append(
            problem("template.context_in_host", f"{where} host may use iparams, not context.")
        )
    if _PLACEHOLDER.fullmatch(host.strip()):
        return problems  # the whole host is an iparam: its value is checked at installation
    if not is_domain_name(_PLACEHOLDER.sub("x", host)):
        problems.append(
            problem(
                "template.host",
                f"{where} host {host!r} must be a domain name: no scheme, path, port or IP.",
            )
        )
    return problems


def is_domain_name(host: str) -> bool:
    """Say whether `host` is a fully qualified domain name, as request templates need."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return False
    labels = host.lower().split(".")
    return (
        len(labels) >= 2
        and all(_LABEL.fullmatch(label) for label in labels)
        and _TLD.fullmatch(labels[-1]) is not None
    )


def _check_values(
    where: str,
    field_name: str,
    values: Mapping[str, object],
    iparams: Mapping[str, dict[str, Any]],
    *,
    allow_secure: bool,
) -> list[Problem]:
    problems = []
    for value in values.values():
        for expression in _PLACEHOLDER.findall(str(value)):
            variables = _VARIABLE.findall(expression)
            if not variables and expression.strip() != "access_token":
                problems.append(
                    problem(
                        "template.placeholder",
                        f"{where} {field_name} has a placeholder with no iparam or context "
                        "variable.",
                    )
                )
            for kind, name in variables:
                if kind != "iparam":
                    continue
                if name not in iparams:
                    problems.append(
                        problem(
                            "template.unknown_iparam",
                            f"{where} {field_name} uses iparam {name!r}, which iparams.json does "
                            "not define.",
                        )
                    )
                elif iparams[name].get("secure") is True and not allow_secure:
                    problems.append(
                        problem(
                            "template.secure_iparam",
                            f"{where} puts secure iparam {name!r} in its {field_name}: secure "
                            "iparams may only go in headers.",
                        )
                    )
    return problems


def _check_options(where: str, template: dict[str, Any]) -> list[Problem]:
    options = template.get("options", {})
    if not isinstance(options, dict):
        return [problem("template.options", f"{where} options must be an object.")]
    problems = []
    for key, value in options.items():
        if key in OPTION_FLAGS:
            if not isinstance(value, bool):
                problems.append(
                    problem("template.options", f"{where} {key} must be true or false.")
                )
        elif key in OPTION_RANGES:
            low, high = OPTION_RANGES[key]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                problems.append(
                    problem("template.options", f"{where} {key} must be from {low} to {high}.")
                )
        else:
            problems.append(problem("template.options", f"{where} has unknown option {key!r}."))
    return problems


# --- Pages -----------------------------------------------------------------------------------


class _PageScan(HTMLParser):
    """What a page loads and whether it runs any script inline."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.loads_appclient = False
        self.inline_script: list[str] = []
        self.assets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name.lower(): value or "" for name, value in attrs}
        for name, value in values.items():
            if name.startswith("on"):
                self.inline_script.append(f"the {name} attribute on <{tag}>")
            elif name in {"href", "src", "action"} and value.strip().lower().startswith(
                "javascript:"
            ):
                self.inline_script.append(f"a javascript: URL on <{tag}>")
        if tag == "script":
            src = values.get("src", "")
            if src == "{{{appclient}}}":
                self.loads_appclient = True
            elif src:
                self.assets.append(src)
            else:
                self.inline_script.append("a <script> without src")
        elif tag == "link" and "stylesheet" in values.get("rel", "").lower().split():
            self.assets.append(values.get("href", ""))


def _check_pages(files: Mapping[str, bytes]) -> list[Problem]:
    problems = []
    for path, data in sorted(files.items()):
        if not (path.startswith("app/") and path.endswith(".html")):
            continue
        scan = _PageScan()
        scan.feed(data.decode("utf-8", errors="replace"))
        scan.close()
        if not scan.loads_appclient:
            problems.append(
                problem(
                    "html.appclient",
                    f'{path} must load Freshworks\' client: <script src="{{{{{{appclient}}}}}}">.',
                )
            )
        problems += [
            problem("html.inline_script", f"{path} runs script inline: {what}.")
            for what in scan.inline_script
        ]
        for asset in scan.assets:
            if "://" in asset or asset.startswith("//") or not asset:
                continue  # a CDN asset, such as Freshworks' Crayons
            resolved = _resolve(PurePosixPath(path).parent, asset)
            if resolved not in files:
                problems.append(problem("html.missing_asset", f"{path} loads missing {asset}."))
    return problems


def _resolve(directory: PurePosixPath, asset: str) -> str:
    parts: list[str] = list(directory.parts)
    for part in PurePosixPath(asset.split("?", 1)[0]).parts:
        if part == "..":
            parts = parts[:-1]
        elif part != ".":
            parts.append(part)
    return "/".join(parts)


# --- Building --------------------------------------------------------------------------------


def package_files(
    *, service_host: str | None = None, source_root: Path = REPO_ROOT
) -> tuple[dict[str, bytes], list[Problem]]:
    """Return the package's files as they go in the zip, and problems reading them.

    The banner's styles come from the service's own copy; `service_host` becomes the
    service_host iparam's default, so the admin installing the app need not type it.
    """
    if (source_root / PACKAGE_DIR.parent).is_symlink():
        return {}, [problem("package.symlink", f"{PACKAGE_DIR.parent} is a symlink.")]
    files, problems = collect_package_files(source_root / PACKAGE_DIR)
    for target, source in SHARED_FILES.items():
        files[target] = (source_root / source).read_bytes()
    if service_host is not None:
        if not is_domain_name(service_host):
            return files, [
                problem(
                    "package.service_host",
                    f"service host {service_host!r} must be a domain name such as "
                    "regulars.example.com: no https://, path, port or IP address.",
                )
            ]
        files["config/iparams.json"] = _with_default_host(
            files.get("config/iparams.json", b"{}"), service_host
        )
    return files, problems


def _with_default_host(data: bytes, service_host: str) -> bytes:
    try:
        iparams = json.loads(data)
    except ValueError:
        return data  # the validator reports it
    if isinstance(iparams, dict) and isinstance(iparams.get(SERVICE_HOST_IPARAM), dict):
        iparams[SERVICE_HOST_IPARAM]["default_value"] = service_host
    return (json.dumps(iparams, indent=2, ensure_ascii=False) + "\n").encode()


def build_package(
    *, out_path: Path, service_host: str | None = None, source_root: Path = REPO_ROOT
) -> list[Problem]:
    """Validate the package and write its zip only if nothing is an error."""
    files, problems = package_files(service_host=service_host, source_root=source_root)
    if has_errors(problems):
        return problems
    problems += validate_package(files)
    if not has_errors(problems):
        manifest = files.pop("manifest.json").decode("utf-8")
        write_zip(out_path, manifest, files)
    return problems
