"""Build the Zendesk app package: fill in the service URL, validate, and write the zip."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from plugin.packaging.archive import SOURCE_ROOT, collect_package_files, write_zip
from plugin.packaging.problems import Problem, has_errors
from plugin.packaging.zendesk_validator import problem, validate_manifest

PACKAGE_DIR = Path("packaging", "zendesk")
# The committed manifest's location URLs point at the local service (the demo's): valid as is
# for Zendesk, which lets plain http through for localhost; a build rewrites only these.
DEV_SERVICE_URL = "http://localhost:5000"


def check_service_url(service_url: str) -> Problem | None:
    """Refuse a service URL that Zendesk would not frame, or that would corrupt the manifest."""

    def refuse(reason: str) -> Problem:
        return problem("package.service_url", f"service URL {service_url!r} {reason}.")

    # The URL is pasted into JSON text, so characters JSON or the placeholders care about are out.
    if re.search(r"[\s\"\\<>{}]", service_url):
        return refuse("contains spaces, quotes, backslashes or braces")
    try:
        parts = urlsplit(service_url)
        host = parts.hostname
        parts.port  # noqa: B018 -- urlsplit checks the port only when asked
    except ValueError:
        return refuse("is not a URL")
    if parts.username is not None or parts.password is not None:
        return refuse("must not carry credentials")
    if parts.query or parts.fragment:
        return refuse("must not have a query or fragment")
    if parts.scheme == "https" and host:
        return None
    if parts.scheme == "http" and host == "localhost":
        return None
    if parts.scheme == "http" and host == "127.0.0.1":
        # Zendesk's validator lets plain http through only for the host name localhost.
        return refuse("uses http on 127.0.0.1, which Zendesk refuses: use http://localhost")
    return refuse("must be an absolute https URL (or http://localhost for local testing)")


def fill_service_url(manifest_text: str, service_url: str) -> str:
    """Point the manifest's location URLs (those on the local service) at the service URL."""
    return manifest_text.replace(f'"{DEV_SERVICE_URL}/', f'"{service_url.rstrip("/")}/')


def build_package(
    *, service_url: str, out_path: Path, source_root: Path = SOURCE_ROOT
) -> list[Problem]:
    """Fill in the service URL, validate, and write the zip only if nothing is an error."""
    url_problem = check_service_url(service_url)
    if url_problem is not None:
        return [url_problem]
    manifest_path = source_root / "manifest.json"
    if manifest_path.is_symlink():
        return [problem("package.symlink", "manifest.json is a symlink.")]
    try:
        manifest_text = manifest_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [problem("manifest.missing", f"there is no manifest.json in {source_root.name}.")]
    except UnicodeDecodeError:
        return [problem("manifest.invalid_json", "manifest.json is not UTF-8 text.")]
    if (source_root / PACKAGE_DIR.parent).is_symlink():
        return [problem("package.symlink", f"{PACKAGE_DIR.parent} is a symlink.")]
    files, problems = collect_package_files(source_root / PACKAGE_DIR)
    manifest_text = fill_service_url(manifest_text, service_url)
    problems += validate_manifest(manifest_text, files=files)
    if not has_errors(problems):
        write_zip(out_path, manifest_text, files)
    return problems
