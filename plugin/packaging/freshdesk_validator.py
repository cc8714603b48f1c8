"""Validate the Freshdesk app package offline against the Freshworks platform's rules: the
layout (`manifest.json`, `app/`, `config/`), the manifest's schema and locations, the icons,
and pages that load Freshworks' client (`{{{appclient}}}`) and run no script inline.

The rules and their severities are in `freshdesk_rules`; request templates and installation
parameters are checked by `freshdesk_requests`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from html.parser import HTMLParser
from pathlib import PurePosixPath
from typing import Any

from plugin.packaging.freshdesk_requests import check_requests, installation_params
from plugin.packaging.freshdesk_rules import json_object, problem
from plugin.packaging.problems import Problem

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
_SVG_TAG = re.compile(r"<svg\b([^>]*)>", re.IGNORECASE)
_ATTRIBUTE = re.compile(r"([\w:-]+)\s*=\s*(['\"])(.*?)\2")


def validate_package(files: Mapping[str, bytes]) -> list[Problem]:
    """Check a package given as its files, keyed by their paths in the zip."""
    problems = _check_layout(files)
    if "manifest.json" not in files:
        return [problem("layout.manifest_missing", "manifest.json is missing."), *problems]
    manifest, manifest_problems = json_object(files["manifest.json"], "manifest")
    problems += manifest_problems
    if manifest is None:
        return problems
    iparams, iparam_problems = installation_params(files)
    problems += iparam_problems
    problems += _check_manifest(manifest)
    freshdesk = _product(manifest)
    problems += _check_locations(freshdesk, files)
    problems += check_requests(freshdesk, files, iparams)
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
