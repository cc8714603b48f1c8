"""The Zendesk app package: it builds, and every Zendesk rule catches a package that breaks it."""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from flask import Flask

from plugin.packaging import archive, icons, zendesk_builder, zendesk_validator
from plugin.packaging.cli import package_cli
from plugin.packaging.problems import Problem

SERVICE_URL = "https://regulars.example.com"
PACKAGE_ENTRIES = [
    "manifest.json",
    "assets/icon_nav_bar.svg",
    "assets/logo-small.png",
    "assets/logo.png",
    "translations/de.json",
    "translations/en.json",
    "translations/es.json",
]
# Written out here rather than read from zendesk_validator.RULES, so a severity change has to be
# deliberate.
WARNING_RULES = {
    "location.option_unknown",
    "parameters.insecure_secret",
    "parameters.secure_default",
    "parameters.secure_without_scopes",
}
# Rules only the builder applies: covered by the build tests below, not by validate_manifest.
BUILDER_RULES = {"manifest.missing", "package.symlink", "package.service_url"}


def real_manifest() -> dict[str, Any]:
    text = (archive.SOURCE_ROOT / "manifest.json").read_text(encoding="utf-8")
    manifest: dict[str, Any] = json.loads(zendesk_builder.fill_service_url(text, SERVICE_URL))
    return manifest


def real_files() -> dict[str, bytes]:
    files, problems = archive.collect_package_files(
        archive.SOURCE_ROOT / zendesk_builder.PACKAGE_DIR
    )
    assert problems == []
    return files


# The committed package asks admins for nothing; the parameter rules are tried on the two
# parameters it once asked for (and their labels).
EXAMPLE_PARAMETERS = [
    {"name": "api_token", "type": "text", "required": True, "secure": True, "scopes": ["header"]},
    {"name": "api_email", "type": "text", "required": True},
]


def example_manifest() -> dict[str, Any]:
    return real_manifest() | {"parameters": [dict(p) for p in EXAMPLE_PARAMETERS]}


def example_files() -> dict[str, bytes]:
    files = real_files()
    english = json.loads(files["translations/en.json"])
    english["app"]["parameters"] = {
        "api_token": {"label": "Zendesk API token"},
        "api_email": {"label": "API token owner's email"},
    }
    files["translations/en.json"] = json.dumps(english).encode()
    return files


@dataclass
class Package:
    manifest: dict[str, Any] = field(default_factory=example_manifest)
    files: dict[str, bytes] = field(default_factory=example_files)
    text: str | None = None

    def validate(self) -> list[Problem]:
        text = self.text if self.text is not None else json.dumps(self.manifest)
        return zendesk_validator.validate_manifest(text, files=self.files)


Breaker = Callable[[Package], None]


def _parent(root: Any, path: str) -> tuple[Any, Any]:
    *parents, last = [int(key) if key.isdigit() else key for key in path.split(".")]
    for key in parents:
        root = root[key]
    return root, last


def put(path: str, value: object) -> Breaker:
    def apply(package: Package) -> None:
        parent, key = _parent(package.manifest, path)
        parent[key] = value

    return apply


def drop(path: str) -> Breaker:
    def apply(package: Package) -> None:
        parent, key = _parent(package.manifest, path)
        del parent[key]

    return apply


def raw(text: str) -> Breaker:
    def apply(package: Package) -> None:
        package.text = text

    return apply


def repeat_key(key: str, value: object) -> Breaker:
    def apply(package: Package) -> None:
        package.text = (
            json.dumps(package.manifest)[:-1] + f", {json.dumps(key)}: {json.dumps(value)}}}"
        )

    return apply


def put_file(path: str, data: bytes) -> Breaker:
    def apply(package: Package) -> None:
        package.files[path] = data

    return apply


def drop_file(path: str) -> Breaker:
    def apply(package: Package) -> None:
        del package.files[path]

    return apply


def edit_english(path: str, value: object = None, *, delete: bool = False) -> Breaker:
    def apply(package: Package) -> None:
        english = json.loads(package.files["translations/en.json"])
        parent, key = _parent(english, path)
        if delete:
            del parent[key]
        else:
            parent[key] = value
        package.files["translations/en.json"] = json.dumps(english).encode()

    return apply


def both(*breakers: Breaker) -> Breaker:
    def apply(package: Package) -> None:
        for breaker in breakers:
            breaker(package)

    return apply


SIDEBAR = "location.support.ticket_sidebar"
BROKEN = [
    ("manifest.invalid_json", raw('{"author": '), "truncated"),
    ("manifest.not_object", raw("[]"), "array"),
    ("manifest.duplicate_key", repeat_key("version", "0.2.0"), "version twice"),
    ("manifest.boolean", put("signedUrls", "true"), "signedUrls string"),
    ("manifest.boolean", put("private", 1), "private number"),
    ("manifest.boolean", put("singleInstall", None), "singleInstall null"),
    ("manifest.string", put("version", 1), "version number"),
    ("author.required", drop("author"), "missing"),
    ("author.object", put("author", "Regulars <maintainers@regulars.invalid>"), "string"),
    ("author.name", drop("author.name"), "missing"),
    ("author.email", put("author.email", ""), "empty"),
    ("author.url", put("author.url", "ftp://regulars.invalid"), "ftp"),
    ("author.url", put("author.url", "https://"), "no host"),
    ("defaultLocale.required", drop("defaultLocale"), "missing"),
    ("defaultLocale.format", put("defaultLocale", "en_US"), "underscore"),
    ("frameworkVersion.required", drop("frameworkVersion"), "missing"),
    ("frameworkVersion.value", put("frameworkVersion", "1.0"), "v1"),
    ("domainWhitelist.type", put("domainWhitelist", ["ok.example", 3]), "number inside"),
    ("domainWhitelist.type", put("domainWhitelist", "ok.example"), "string"),
    ("location.required", drop("location"), "missing"),
    ("location.required", put("location", {}), "empty"),
    ("location.object", put("location", ["ticket_sidebar"]), "array"),
    ("location.object", put("location.support", "ticket_sidebar"), "product string"),
    ("location.object", put(SIDEBAR, 3), "options number"),
    ("location.product", put("location.helpdesk", {}), "unknown product"),
    ("location.unknown", put("location.support.ticket_footer", {"url": SERVICE_URL}), "footer"),
    ("location.option_unknown", put(f"{SIDEBAR}.height", "200px"), "height"),
    ("location.option_type", put(f"{SIDEBAR}.flexible", "true"), "flexible string"),
    ("location.option_type", put(f"{SIDEBAR}.autoHide", 1), "autoHide number"),
    ("location.option_type", put(f"{SIDEBAR}.signed", "yes"), "signed string"),
    ("location.option_type", put(f"{SIDEBAR}.size", "big"), "size string"),
    ("location.option_type", put(f"{SIDEBAR}.url", ["https://a.example"]), "url array"),
    ("location.url", put(f"{SIDEBAR}.url", "http://regulars.example.com/sidebar"), "http"),
    ("location.url", put(f"{SIDEBAR}.url", "sidebar.html"), "relative outside assets"),
    ("location.url", put(f"{SIDEBAR}.url", "//regulars.example.com/assets/x"), "no scheme"),
    ("location.url", put(SIDEBAR, "http://127.0.0.1/sidebar"), "shorthand http"),
    ("location.asset_missing", put(f"{SIDEBAR}.url", "assets/iframe.html"), "missing asset"),
    ("location.autoload_without_url", drop("location.support.nav_bar.url"), "default"),
    (
        "location.autoload_without_url",
        put("location.support.nav_bar", {"autoLoad": True}),
        "explicit autoLoad",
    ),
    ("parameters.array", put("parameters", {"api_token": {}}), "object"),
    ("parameters.object", put("parameters.1", "api_email"), "string"),
    ("parameters.name", drop("parameters.1.name"), "missing"),
    ("parameters.duplicate_name", put("parameters.1.name", "api_token"), "twice"),
    ("parameters.reserved_name", put("parameters.1.name", "name"), "name"),
    ("parameters.unknown_type", put("parameters.1.type", "email"), "email"),
    ("parameters.boolean", put("parameters.1.required", "yes"), "required string"),
    ("parameters.boolean", put("parameters.0.secure", 1), "secure number"),
    ("parameters.hidden_required", put("parameters.1.type", "hidden"), "hidden"),
    ("parameters.scopes_not_secure", put("parameters.1.scopes", ["header"]), "not secure"),
    ("parameters.scopes_array", put("parameters.0.scopes", []), "empty"),
    ("parameters.scopes_array", put("parameters.0.scopes", "header"), "string"),
    ("parameters.scopes_unknown", put("parameters.0.scopes", ["header", "cookie"]), "cookie"),
    ("parameters.insecure_secret", put("parameters.0.secure", False), "token not secure"),
    (
        "parameters.insecure_secret",
        put("parameters.1", {"name": "webhook_Password", "type": "multiline"}),
        "password",
    ),
    ("parameters.secure_default", put("parameters.0.default", "changeme"), "default"),
    ("parameters.secure_without_scopes", drop("parameters.0.scopes"), "no scopes"),
    ("translations.missing", drop_file("translations/en.json"), "en"),
    ("translations.missing", put("defaultLocale", "fr"), "fr"),
    ("translations.invalid_json", put_file("translations/fr.json", b"{not json"), "broken"),
    ("translations.invalid_json", put_file("translations/fr.json", b"[]"), "array"),
    ("translations.app_name", edit_english("app.name", delete=True), "private"),
    (
        "translations.public_fields",
        both(put("private", False), edit_english("app.long_description", delete=True)),
        "public",
    ),
    ("translations.parameter_label", edit_english("app.parameters.api_email.label", ""), "empty"),
    ("translations.parameter_label", edit_english("app.parameters.api_email", delete=True), "none"),
    (
        "translations.parameter_label",
        edit_english("app.parameters.stale", {"helpText": "left over"}),
        "undeclared entry",
    ),
    ("assets.icon_missing", drop_file("assets/icon_nav_bar.svg"), "nav_bar"),
    ("assets.icon_missing", put("location.support.top_bar", {"url": SERVICE_URL}), "top_bar"),
    ("assets.logo_missing", drop_file("assets/logo.png"), "large"),
    ("assets.logo_missing", drop_file("assets/logo-small.png"), "small"),
    ("assets.logo_not_png", put_file("assets/logo.png", b"GIF89a" + bytes(40)), "gif"),
    ("assets.logo_size", put_file("assets/logo.png", icons.logo_png(128)), "large too small"),
    ("assets.logo_size", put_file("assets/logo-small.png", icons.logo_png(320)), "small too big"),
    ("package.forbidden_file", put_file("assets/install.sh", b"#!/bin/sh\n"), "sh"),
    ("package.forbidden_file", put_file("assets/Guide.PDF", b"%PDF-1.4"), "pdf"),
    ("package.forbidden_file", put_file("assets/rates.xlsx", b"PK"), "xlsx"),
    ("package.forbidden_file", put_file("lib/util.jar", b"PK"), "jar"),
]


def test_the_committed_manifest_is_valid_as_is_and_asks_for_nothing() -> None:
    text = (archive.SOURCE_ROOT / "manifest.json").read_text(encoding="utf-8")
    assert zendesk_validator.validate_manifest(text, files=real_files()) == []
    manifest = json.loads(text)
    assert "parameters" not in manifest
    assert "{{" not in text
    assert "parameters" not in json.loads(real_files()["translations/en.json"])["app"]


def test_the_build_rewrites_only_the_location_urls() -> None:
    text = (archive.SOURCE_ROOT / "manifest.json").read_text(encoding="utf-8")
    built = json.loads(zendesk_builder.fill_service_url(text, SERVICE_URL + "/"))
    committed = json.loads(text)
    support = built["location"]["support"]
    assert support["ticket_sidebar"]["url"] == SERVICE_URL + "/sidebar"
    assert support["nav_bar"]["url"] == SERVICE_URL + "/console"
    for location in ("ticket_sidebar", "nav_bar"):
        committed["location"]["support"][location]["url"] = support[location]["url"]
    assert built == committed


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
    assert {rule for rule, _, _ in BROKEN} | BUILDER_RULES == set(zendesk_validator.RULES)


def test_warnings_are_exactly_the_warning_rules() -> None:
    assert {
        rule for rule, severity in zendesk_validator.RULES.items() if severity == "warning"
    } == (WARNING_RULES)


@pytest.mark.parametrize(
    ("breaker", "quiet_rule"),
    [
        pytest.param(
            put(f"{SIDEBAR}.url", "{{setting.sidebar_url}}/x"), "location.url", id="setting url"
        ),
        pytest.param(put(f"{SIDEBAR}.url", "http://localhost:5000/x"), "location.url", id="local"),
        pytest.param(
            both(put(f"{SIDEBAR}.url", "assets/iframe.html"), put_file("assets/iframe.html", b"")),
            "location.asset_missing",
            id="existing asset",
        ),
        pytest.param(
            put("location.support.background", {"autoLoad": False}),
            "location.autoload_without_url",
            id="not loaded",
        ),
        pytest.param(
            both(put("requirementsOnly", True), drop("location"), drop("frameworkVersion")),
            "location.required",
            id="requirements only",
        ),
        pytest.param(
            both(put("private", False), edit_english("app.description", "x")),
            "translations.public_fields",
            id="description alias",
        ),
        pytest.param(
            put("parameters.1", {"name": "api_key_enabled", "type": "checkbox"}),
            "parameters.insecure_secret",
            id="checkbox named key",
        ),
    ],
)
def test_allowed_variation_does_not_report_rule(breaker: Breaker, quiet_rule: str) -> None:
    package = Package()
    breaker(package)

    assert quiet_rule not in {p.rule for p in package.validate()}


def test_duplicate_key_names_the_key() -> None:
    package = Package()
    repeat_key("defaultLocale", "en")(package)

    assert [str(p) for p in package.validate()] == [
        "error [manifest.duplicate_key] manifest.json has the key 'defaultLocale' more than once."
    ]


def test_real_package_builds_with_service_url_filled_in(tmp_path: Path) -> None:
    out = tmp_path / "dist" / "regulars-zendesk.zip"

    assert zendesk_builder.build_package(service_url=SERVICE_URL + "/", out_path=out) == []

    with zipfile.ZipFile(out) as archive:
        assert archive.namelist() == PACKAGE_ENTRIES
        manifest_text = archive.read("manifest.json").decode()
        assert archive.read("assets/logo.png") == real_files()["assets/logo.png"]
    support = json.loads(manifest_text)["location"]["support"]
    assert support["ticket_sidebar"]["url"] == "https://regulars.example.com/sidebar"
    assert support["nav_bar"]["url"] == "https://regulars.example.com/console"
    assert "{{" not in manifest_text


def test_the_built_zip_as_written_passes_the_validator(tmp_path: Path) -> None:
    out = tmp_path / "regulars-zendesk.zip"
    assert zendesk_builder.build_package(service_url=SERVICE_URL, out_path=out) == []

    with zipfile.ZipFile(out) as built:
        entries = {name: built.read(name) for name in built.namelist() if not name.endswith("/")}
    manifest_text = entries.pop("manifest.json").decode()
    assert zendesk_validator.validate_manifest(manifest_text, files=entries) == []


def test_build_is_reproducible(tmp_path: Path) -> None:
    first, second = tmp_path / "first.zip", tmp_path / "second.zip"
    zendesk_builder.build_package(service_url=SERVICE_URL, out_path=first)
    zendesk_builder.build_package(service_url=SERVICE_URL, out_path=second)

    assert first.read_bytes() == second.read_bytes()


def test_localhost_over_http_builds_for_local_testing(tmp_path: Path) -> None:
    out = tmp_path / "local.zip"

    assert zendesk_builder.build_package(service_url="http://localhost:5000", out_path=out) == []
    with zipfile.ZipFile(out) as archive:
        assert "http://localhost:5000/sidebar" in archive.read("manifest.json").decode()


@pytest.mark.parametrize(
    "service_url",
    [
        "http://regulars.example.com",
        "http://127.0.0.1:5000",
        "ftp://regulars.example.com",
        "regulars.example.com",
        "https://",
        'https://regulars.example.com/"',
        "https://regulars.example.com/{{setting.x}}",
        "https://admin:secret@regulars.example.com",
        "https://regulars.example.com/?installation=1",
        "https://regulars.example.com:99999",
    ],
)
def test_unusable_service_url_is_refused(tmp_path: Path, service_url: str) -> None:
    out = tmp_path / "package.zip"

    problems = zendesk_builder.build_package(service_url=service_url, out_path=out)

    assert [p.rule for p in problems] == ["package.service_url"]
    assert not out.exists()


def copy_sources(tmp_path: Path) -> Path:
    root = tmp_path / "source"
    shutil.copytree(
        archive.SOURCE_ROOT / zendesk_builder.PACKAGE_DIR, root / zendesk_builder.PACKAGE_DIR
    )
    shutil.copy(archive.SOURCE_ROOT / "manifest.json", root / "manifest.json")
    return root


def test_copied_sources_build(tmp_path: Path) -> None:
    out = tmp_path / "package.zip"

    assert (
        zendesk_builder.build_package(
            service_url=SERVICE_URL, out_path=out, source_root=copy_sources(tmp_path)
        )
        == []
    )
    assert out.exists()


@pytest.mark.parametrize("link", ["assets/extra.svg", "more", "manifest"])
def test_symlink_is_refused(tmp_path: Path, link: str) -> None:
    root = copy_sources(tmp_path)
    package_dir = root / zendesk_builder.PACKAGE_DIR
    if link == "manifest":
        real = tmp_path / "manifest.json"
        (root / "manifest.json").rename(real)
        (root / "manifest.json").symlink_to(real)
    elif link == "more":
        (package_dir / "more").symlink_to(package_dir / "assets", target_is_directory=True)
    else:
        (package_dir / link).symlink_to(package_dir / "assets" / "icon_nav_bar.svg")
    out = tmp_path / "package.zip"

    problems = zendesk_builder.build_package(
        service_url=SERVICE_URL, out_path=out, source_root=root
    )

    assert "package.symlink" in {p.rule for p in problems}
    assert not out.exists()


def test_missing_manifest_is_reported(tmp_path: Path) -> None:
    root = copy_sources(tmp_path)
    (root / "manifest.json").unlink()

    problems = zendesk_builder.build_package(
        service_url=SERVICE_URL, out_path=tmp_path / "package.zip", source_root=root
    )

    assert [p.rule for p in problems] == ["manifest.missing"]


def test_errors_stop_the_build(tmp_path: Path) -> None:
    root = copy_sources(tmp_path)
    (root / zendesk_builder.PACKAGE_DIR / "assets" / "logo.png").unlink()
    out = tmp_path / "package.zip"

    problems = zendesk_builder.build_package(
        service_url=SERVICE_URL, out_path=out, source_root=root
    )

    assert [p.rule for p in problems] == ["assets.logo_missing"]
    assert not out.exists()


def test_warnings_do_not_stop_the_build(tmp_path: Path) -> None:
    root = copy_sources(tmp_path)
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    manifest["location"]["support"]["nav_bar"]["colour"] = "red"  # an option Zendesk ignores
    (root / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    out = tmp_path / "package.zip"

    problems = zendesk_builder.build_package(
        service_url=SERVICE_URL, out_path=out, source_root=root
    )

    assert [(p.rule, p.severity) for p in problems] == [("location.option_unknown", "warning")]
    assert out.exists()


def test_committed_logos_are_what_the_generator_draws() -> None:
    files = real_files()
    for name, size in icons.LOGO_SIZES.items():
        assert files[f"assets/{name}"] == icons.logo_png(size)


def test_nav_bar_icon_is_an_svg() -> None:
    # Our own committed file, so parsing it with ElementTree carries no untrusted-XML risk.
    root = ElementTree.fromstring(real_files()["assets/icon_nav_bar.svg"])  # noqa: S314
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("viewBox") == "0 0 18 18"


def run_cli(*args: str) -> Any:
    app = Flask(__name__)
    app.cli.add_command(package_cli)
    return app.test_cli_runner().invoke(args=["package", "zendesk", *args])


def test_cli_writes_the_package(tmp_path: Path) -> None:
    out = tmp_path / "dist" / "regulars-zendesk.zip"

    result = run_cli("--service-url", SERVICE_URL, "--out", str(out))

    assert result.exit_code == 0, result.output
    assert result.output == f"Wrote {out} ({out.stat().st_size} bytes).\n"


def test_cli_prints_errors_and_fails(tmp_path: Path) -> None:
    out = tmp_path / "regulars-zendesk.zip"

    result = run_cli("--service-url", "http://regulars.example.com", "--out", str(out))

    assert result.exit_code == 1
    assert result.output.startswith("error [package.service_url] service URL ")
    assert not out.exists()
