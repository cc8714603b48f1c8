"""The Freshdesk app package's request templates and installation parameters, checked offline.

Request templates (`config/requests.json`) must use https and a host that is a domain name and
not an IP, put secure iparams only in headers, and be declared in the manifest for every
template the code invokes; installation parameters (`config/iparams.json`) must have known
types, and those that look secret must be secure.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from plugin.packaging.freshdesk_rules import json_object, problem
from plugin.packaging.problems import Problem

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


# --- Installation parameters -----------------------------------------------------------------


def installation_params(
    files: Mapping[str, bytes],
) -> tuple[dict[str, dict[str, Any]], list[Problem]]:
    """Return the installation parameters by name, and what is wrong with them."""
    data = files.get("config/iparams.json")
    if data is None:
        return {}, [problem("iparams.missing", "config/iparams.json is missing.")]
    parsed, problems = json_object(data, "iparams")
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


def check_requests(
    freshdesk: dict[str, Any], files: Mapping[str, bytes], iparams: Mapping[str, dict[str, Any]]
) -> list[Problem]:
    """Check the request templates against the manifest's declarations, the code's calls and
    the installation parameters they use."""
    declared = freshdesk.get("requests")
    declared = declared if isinstance(declared, dict) else {}
    invoked, problems = _invoked_templates(files)
    data = files.get("config/requests.json")
    if data is None:
        if declared or invoked:
            problems.append(problem("requests.missing", "config/requests.json is missing."))
        return problems
    templates, template_problems = json_object(data, "requests")
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
