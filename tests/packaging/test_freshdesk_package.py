"""The Freshdesk app package: it builds, and every Freshworks rule catches a package breaking it."""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from plugin.packaging import (
    archive,
    freshdesk_builder,
    freshdesk_messages,
    freshdesk_rules,
    freshdesk_validator,
)
from plugin.packaging.cli import package_cli
from plugin.packaging.problems import Problem

MANIFEST = "manifest.json"
REQUESTS = "config/requests.json"
IPARAMS = "config/iparams.json"
INDEX = "app/index.html"
ICON = "app/styles/images/icon.svg"
PACKAGE_ENTRIES = [
    MANIFEST,
    INDEX,
    "app/scripts/app.js",
    "app/scripts/messages.js",
    ICON,
    "app/styles/sidebar-more.css",
    "app/styles/sidebar-review.css",
    "app/styles/sidebar.css",
    IPARAMS,
    REQUESTS,
]
JSON_FILES = (MANIFEST, REQUESTS, IPARAMS)
# Written out here rather than read from freshdesk_rules.RULES, so a severity change is deliberate.
WARNING_RULES = {"requests.unused", "iparams.secure_default"}
# Rules only the builder applies: covered by the build tests below.
BUILDER_RULES = {"package.symlink", "package.service_host"}


def real_files() -> dict[str, bytes]:
    files, problems = freshdesk_builder.package_files()
    assert problems == []
    return files


@dataclass
class Package:
    files: dict[str, bytes] = field(default_factory=real_files)
    docs: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.docs = {name: json.loads(self.files[name]) for name in JSON_FILES}

    def validate(self) -> list[Problem]:
        files = dict(self.files)
        for name, doc in self.docs.items():
            if name in files and not isinstance(doc, bytes):
                files[name] = json.dumps(doc).encode()
            elif isinstance(doc, bytes):
                files[name] = doc
        return freshdesk_validator.validate_package(files)


Breaker = Callable[[Package], None]
SIDEBAR = "product.freshdesk.location.ticket_sidebar"
SCHEMA = "getSidebar.schema"


def _parent(root: Any, path: str) -> tuple[Any, str]:
    *parents, last = path.split(".")
    for key in parents:
        root = root[key]
    return root, last


def put(name: str, path: str, value: object) -> Breaker:
    def apply(package: Package) -> None:
        parent, key = _parent(package.docs[name], path)
        parent[key] = value

    return apply


def drop(name: str, path: str) -> Breaker:
    def apply(package: Package) -> None:
        parent, key = _parent(package.docs[name], path)
        del parent[key]

    return apply


def raw(name: str, text: str) -> Breaker:
    def apply(package: Package) -> None:
        package.docs[name] = text.encode()

    return apply


def put_file(path: str, data: bytes) -> Breaker:
    def apply(package: Package) -> None:
        package.files[path] = data

    return apply


def drop_file(path: str) -> Breaker:
    def apply(package: Package) -> None:
        del package.files[path]
        package.docs.pop(path, None)

    return apply


def edit_file(path: str, old: str, new: str) -> Breaker:
    def apply(package: Package) -> None:
        text = package.files[path].decode()
        assert old in text
        package.files[path] = text.replace(old, new).encode()

    return apply


def both(*breakers: Breaker) -> Breaker:
    def apply(package: Package) -> None:
        for breaker in breakers:
            breaker(package)

    return apply


def manifest(path: str, value: object) -> Breaker:
    return put(MANIFEST, path, value)


def schema(path: str, value: object) -> Breaker:
    return put(REQUESTS, f"{SCHEMA}.{path}", value)


def svg(width: int, height: int) -> bytes:
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"/>'.encode()


SECRET = "<%= iparam.installation_secret %>"
BROKEN: list[tuple[str, Breaker, str]] = [
    ("layout.manifest_missing", drop_file(MANIFEST), "missing"),
    ("layout.unexpected_path", put_file("lib/util.js", b""), "lib folder"),
    ("layout.unexpected_path", put_file("notes.txt", b""), "top-level file"),
    ("layout.forbidden_file", put_file("app/node_modules/x/index.js", b""), "node_modules"),
    ("layout.forbidden_file", put_file("app/old.zip", b"PK"), "zip"),
    ("layout.forbidden_file", put_file("config/.env", b"KEY=1"), "env"),
    ("manifest.invalid_json", raw(MANIFEST, '{"platform-version": '), "truncated"),
    ("manifest.not_object", raw(MANIFEST, "[]"), "array"),
    (
        "manifest.duplicate_key",
        raw(MANIFEST, '{"platform-version": "2.3", "platform-version": "2.3"}'),
        "twice",
    ),
    ("manifest.platform_version", manifest("platform-version", "3.0"), "3.0"),
    ("manifest.platform_version", drop(MANIFEST, "platform-version"), "missing"),
    ("manifest.product", drop(MANIFEST, "product"), "missing"),
    ("manifest.product", manifest("product.freshdesk", "ticket_sidebar"), "string"),
    ("manifest.product", manifest("product.zendesk", {}), "unknown product"),
    ("manifest.engines", drop(MANIFEST, "engines"), "missing"),
    ("manifest.engines", manifest("engines.node", "16.20.0"), "old node"),
    ("manifest.engines", manifest("engines.fdk", "8.6.7"), "old fdk"),
    ("manifest.engines", manifest("engines.fdk", 9), "number"),
    ("location.required", drop(MANIFEST, "product.freshdesk.location"), "missing"),
    ("location.required", manifest("product.freshdesk.location", {}), "empty"),
    ("location.unknown", manifest("product.freshdesk.location.ticket_footer", {}), "footer"),
    ("location.url", drop(MANIFEST, f"{SIDEBAR}.url"), "missing"),
    ("location.url", manifest(f"{SIDEBAR}.url", "https://regulars.example.com/"), "absolute"),
    ("location.url", manifest(f"{SIDEBAR}.url", "../index.html"), "outside app"),
    ("location.url", manifest(f"{SIDEBAR}.url", "scripts/app.js"), "not html"),
    ("location.url_missing", manifest(f"{SIDEBAR}.url", "views/banner.html"), "missing page"),
    ("location.icon", drop(MANIFEST, f"{SIDEBAR}.icon"), "missing"),
    ("location.icon", manifest(f"{SIDEBAR}.icon", "styles/images/icon.png"), "png"),
    ("location.icon_missing", manifest(f"{SIDEBAR}.icon", "icon.svg"), "missing file"),
    ("icon.not_svg", put_file(ICON, b"\x89PNG\r\n\x1a\n"), "png bytes"),
    ("icon.size", put_file(ICON, svg(32, 32)), "32 px"),
    ("icon.size", put_file(ICON, svg(64, 48)), "not square"),
    ("requests.missing", drop_file(REQUESTS), "missing"),
    ("requests.invalid_json", raw(REQUESTS, "{"), "truncated"),
    ("requests.not_object", raw(REQUESTS, '"getSidebar"'), "string"),
    ("requests.undeclared", drop(MANIFEST, "product.freshdesk.requests.getSidebar"), "dropped"),
    ("requests.undefined", manifest("product.freshdesk.requests.getTickets", {}), "undefined"),
    (
        "requests.unused",
        put(REQUESTS, "spare", {"schema": {"method": "GET", "host": "api.example.com"}}),
        "spare",
    ),
    (
        "requests.dynamic_name",
        put_file("app/scripts/more.js", b"client.request.invokeTemplate(name, {});"),
        "variable",
    ),
    ("template.schema", drop(REQUESTS, SCHEMA), "no schema"),
    ("template.schema", drop(REQUESTS, f"{SCHEMA}.host"), "no host"),
    ("template.schema", schema("url", "https://regulars.example.com"), "unknown field"),
    ("template.method", schema("method", "FETCH"), "fetch"),
    ("template.method", drop(REQUESTS, f"{SCHEMA}.method"), "missing"),
    ("template.protocol", schema("protocol", "http"), "http"),
    ("template.host", schema("host", "https://regulars.example.com"), "scheme"),
    ("template.host", schema("host", "regulars.example.com/api"), "path"),
    ("template.host", schema("host", "regulars.example.com:8443"), "port"),
    ("template.host", schema("host", "203.0.113.7"), "ip"),
    ("template.host", schema("host", "localhost"), "localhost"),
    ("template.host", schema("host", "<%= iparam.service_host %>/x"), "iparam and path"),
    ("template.path", schema("path", "freshdesk/sidebar"), "relative"),
    ("template.path", schema("path", "/freshdesk/sidebar?x=1"), "query"),
    ("template.value_type", schema("headers.X-Count", 1), "number header"),
    ("template.value_type", schema("query", ["a"]), "query array"),
    ("template.placeholder", schema("headers.X-Sum", "<%= 1 + 1 %>"), "no variable"),
    ("template.unknown_iparam", schema("headers.X-Key", "<%= iparam.api_key %>"), "undefined"),
    ("template.secure_iparam", schema("query", {"secret": SECRET}), "query"),
    ("template.secure_iparam", schema("path", f"/freshdesk/{SECRET}"), "path"),
    ("template.secure_iparam", schema("host", SECRET), "host"),
    ("template.context_in_host", schema("host", "<%= context.host %>.example.com"), "context"),
    ("template.options", put(REQUESTS, "getSidebar.options.maxAttempts", 9), "too many"),
    ("template.options", put(REQUESTS, "getSidebar.options.retryDelay", 0), "no delay"),
    ("template.options", put(REQUESTS, "getSidebar.options.timeout", 5), "unknown"),
    ("template.options", put(REQUESTS, "getSidebar.options.isOAuth", "yes"), "oauth string"),
    ("template.options", put(REQUESTS, "getSidebar.options", []), "array"),
    ("iparams.missing", drop_file(IPARAMS), "missing"),
    ("iparams.invalid_json", raw(IPARAMS, "{,}"), "broken"),
    ("iparams.not_object", raw(IPARAMS, "[]"), "array"),
    ("iparams.field", drop(IPARAMS, "service_host.display_name"), "no display name"),
    ("iparams.field", put(IPARAMS, "installation_secret", "secret"), "string"),
    ("iparams.type", put(IPARAMS, "installation_secret.type", "password"), "password"),
    ("iparams.boolean", put(IPARAMS, "installation_secret.secure", "true"), "secure string"),
    ("iparams.boolean", put(IPARAMS, "service_host.required", 1), "required number"),
    ("iparams.insecure_secret", put(IPARAMS, "installation_secret.secure", False), "secret"),
    ("iparams.secure_default", put(IPARAMS, "installation_secret.default_value", "x"), "default"),
    ("html.appclient", edit_file(INDEX, '<script src="{{{appclient}}}"></script>', ""), "none"),
    (
        "html.inline_script",
        edit_file(INDEX, "</body>", "<script>app.initialized()</script></body>"),
        "script",
    ),
    ("html.inline_script", edit_file(INDEX, "<main ", '<main onclick="go()" '), "onclick"),
    (
        "html.inline_script",
        edit_file(INDEX, "</body>", '<a href="javascript:go()">x</a></body>'),
        "javascript url",
    ),
    ("html.missing_asset", drop_file("app/styles/sidebar.css"), "stylesheet"),
    ("html.missing_asset", edit_file(INDEX, "scripts/app.js", "scripts/main.js"), "script"),
]


def test_real_package_has_no_problems() -> None:
    assert Package().validate() == []


@pytest.mark.parametrize(
    ("rule", "breaker"),
    [pytest.param(rule, breaker, id=f"{rule}-{label}") for rule, breaker, label in BROKEN],
)
def test_broken_package_reports_rule(rule: str, breaker: Breaker) -> None:
    package = Package()
    breaker(package)

    problems = package.validate()

    severity = "warning" if rule in WARNING_RULES else "error"
    assert any(p.rule == rule and p.severity == severity for p in problems), problems


def test_every_rule_has_a_broken_example() -> None:
    assert {rule for rule, _, _ in BROKEN} | BUILDER_RULES == set(freshdesk_rules.RULES)


def test_warnings_are_exactly_the_warning_rules() -> None:
    warnings = {rule for rule, severity in freshdesk_rules.RULES.items() if severity == "warning"}
    assert warnings == WARNING_RULES


@pytest.mark.parametrize(
    ("breaker", "quiet_rule"),
    [
        pytest.param(
            both(
                put(IPARAMS, "subdomain", {"display_name": "Subdomain", "type": "text"}),
                schema("host", "<%= iparam.subdomain %>.freshdesk.com"),
            ),
            "template.host",
            id="iparam label in a domain",
        ),
        pytest.param(schema("query", {"per_page": 30}), "template.value_type", id="number query"),
        pytest.param(
            schema("headers.Authorization", "Basic <%= encode(iparam.installation_secret) %>"),
            "template.placeholder",
            id="encode()",
        ),
        pytest.param(
            edit_file(
                INDEX,
                "</head>",
                '<script src="https://unpkg.com/@freshworks/crayons@v4/dist/crayons.js"></script>'
                "</head>",
            ),
            "html.missing_asset",
            id="CDN script",
        ),
        pytest.param(
            manifest("product.freshdesk.location.ticket_background", {"url": "index.html"}),
            "location.icon",
            id="background without icon",
        ),
        pytest.param(manifest("engines.node", "18.x"), "manifest.engines", id="node 18.x"),
        pytest.param(put_file("README.md", b"# Regulars"), "layout.unexpected_path", id="readme"),
    ],
)
def test_allowed_variation_does_not_report_rule(breaker: Breaker, quiet_rule: str) -> None:
    package = Package()
    breaker(package)

    assert quiet_rule not in {p.rule for p in package.validate()}


def test_the_page_invokes_exactly_the_declared_templates() -> None:
    files = real_files()
    manifest_doc = json.loads(files[MANIFEST])
    assert set(manifest_doc["product"]["freshdesk"]["requests"]) == {
        "getSidebar",
        "postAction",
        "postReviewCheck",
        "postSync",
        "postGestures",
    }
    assert b"invokeTemplate('getSidebar'" in files["app/scripts/app.js"]
    assert b"invokeTemplate('postAction'" in files["app/scripts/app.js"]
    assert b"invokeTemplate('postReviewCheck'" in files["app/scripts/app.js"]
    assert b"invokeTemplate('postSync'" in files["app/scripts/app.js"]
    assert b"invokeTemplate('postGestures'" in files["app/scripts/app.js"]


def test_the_banner_styles_are_the_services_own() -> None:
    for name in ("sidebar.css", "sidebar-more.css", "sidebar-review.css"):
        assert (
            real_files()[f"app/styles/{name}"]
            == (archive.SOURCE_ROOT / "static" / "css" / name).read_bytes()
        )


def test_the_page_carries_its_own_words_in_every_language_of_the_catalogs() -> None:
    script = real_files()["app/scripts/messages.js"].decode()
    prefix = "window.REGULARS_MESSAGES = "
    body = script[script.index(prefix) + len(prefix) :].rstrip().rstrip(";")
    messages = json.loads(body)
    assert set(messages) >= {"en", "es", "de"}
    assert messages["en"] == {key: str(text) for key, text in freshdesk_messages.MESSAGES.items()}
    assert messages["de"]["copied"] == "Kopiert"
    assert messages["es"]["unreachable"] != messages["en"]["unreachable"]
    for language, words in messages.items():
        assert set(words) == set(messages["en"]), language
    # Every message the page asks for is one the build writes, and the page loads it first.
    page = real_files()["app/scripts/app.js"].decode()
    asked = set(re.findall(r"say\('(\w+)'", page))
    assert asked and asked <= set(messages["en"])
    index = real_files()[INDEX].decode()
    assert index.index("scripts/messages.js") < index.index("scripts/app.js")


# --- Building ---------------------------------------------------------------------------------


def test_real_package_builds_with_the_layout_at_the_zip_root(tmp_path: Path) -> None:
    out = tmp_path / "dist" / "regulars-freshdesk.zip"

    assert freshdesk_builder.build_package(out_path=out) == []

    with zipfile.ZipFile(out) as archive:
        assert archive.namelist() == PACKAGE_ENTRIES
        iparams = json.loads(archive.read(IPARAMS))
    assert "default_value" not in iparams["service_host"]


def test_service_host_becomes_the_settings_default(tmp_path: Path) -> None:
    out = tmp_path / "package.zip"

    assert freshdesk_builder.build_package(out_path=out, service_host="regulars.example.com") == []

    with zipfile.ZipFile(out) as archive:
        iparams = json.loads(archive.read(IPARAMS))
    assert iparams["service_host"]["default_value"] == "regulars.example.com"
    assert "default_value" not in iparams["installation_secret"]


@pytest.mark.parametrize(
    "service_host",
    [
        "https://regulars.example.com",
        "regulars.example.com/",
        "regulars.example.com:8443",
        "127.0.0.1",
        "localhost",
        "",
    ],
)
def test_unusable_service_host_is_refused(tmp_path: Path, service_host: str) -> None:
    out = tmp_path / "package.zip"

    problems = freshdesk_builder.build_package(out_path=out, service_host=service_host)

    assert [p.rule for p in problems] == ["package.service_host"]
    assert not out.exists()


def test_build_is_reproducible(tmp_path: Path) -> None:
    first, second = tmp_path / "first.zip", tmp_path / "second.zip"
    freshdesk_builder.build_package(out_path=first)
    freshdesk_builder.build_package(out_path=second)

    assert first.read_bytes() == second.read_bytes()


def copy_sources(tmp_path: Path) -> Path:
    root = tmp_path / "source"
    shutil.copytree(
        archive.SOURCE_ROOT / freshdesk_builder.PACKAGE_DIR, root / freshdesk_builder.PACKAGE_DIR
    )
    (root / "static" / "css").mkdir(parents=True)
    for name in ("sidebar.css", "sidebar-more.css", "sidebar-review.css"):
        shutil.copy(archive.SOURCE_ROOT / "static" / "css" / name, root / "static" / "css")
    return root


def test_a_broken_source_tree_writes_no_zip(tmp_path: Path) -> None:
    root = copy_sources(tmp_path)
    (root / freshdesk_builder.PACKAGE_DIR / "config" / "requests.json").unlink()
    out = tmp_path / "package.zip"

    problems = freshdesk_builder.build_package(out_path=out, source_root=root)

    assert "requests.missing" in {p.rule for p in problems}
    assert not out.exists()


def test_symlink_is_refused(tmp_path: Path) -> None:
    root = copy_sources(tmp_path)
    app = root / freshdesk_builder.PACKAGE_DIR / "app"
    (app / "extra.svg").symlink_to(app / "styles" / "images" / "icon.svg")
    out = tmp_path / "package.zip"

    problems = freshdesk_builder.build_package(out_path=out, source_root=root)

    assert [p.rule for p in problems] == ["package.symlink"]
    assert not out.exists()


def test_package_command_builds_without_the_service(tmp_path: Path) -> None:
    out = tmp_path / "regulars-freshdesk.zip"
    runner = Flask(__name__).test_cli_runner()

    result = runner.invoke(
        package_cli, ["freshdesk", "--service-host", "regulars.example.com", "--out", str(out)]
    )

    assert result.exit_code == 0, result.output
    assert out.exists()


def test_package_command_fails_and_says_why(tmp_path: Path) -> None:
    runner = Flask(__name__).test_cli_runner()

    result = runner.invoke(
        package_cli, ["freshdesk", "--service-host", "10.0.0.1", "--out", str(tmp_path / "x.zip")]
    )

    assert result.exit_code == 1
    assert "package.service_host" in result.output
