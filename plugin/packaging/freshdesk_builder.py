"""Build the Freshdesk app package: gather its files with the service's own styles, set the
service host's default, validate offline, and write the zip.
"""

from __future__ import annotations

import json
from pathlib import Path

from plugin.packaging.archive import SOURCE_ROOT, collect_package_files, write_zip
from plugin.packaging.freshdesk_messages import SCRIPT_PATH, messages_script
from plugin.packaging.freshdesk_requests import is_domain_name
from plugin.packaging.freshdesk_rules import problem
from plugin.packaging.freshdesk_validator import validate_package
from plugin.packaging.problems import Problem, has_errors

PACKAGE_DIR = Path("packaging", "freshdesk")
# The sidebar's styles ship in the package from the one copy the service uses: the account
# review's and what shows after a click or on some cards are files of their own there, which
# the service's page loads only with the parts that need them.
SHARED_FILES = {
    "app/styles/sidebar.css": Path("static", "css", "sidebar.css"),
    "app/styles/sidebar-more.css": Path("static", "css", "sidebar-more.css"),
    "app/styles/sidebar-review.css": Path("static", "css", "sidebar-review.css"),
}
SERVICE_HOST_IPARAM = "service_host"


def package_files(
    *, service_host: str | None = None, source_root: Path = SOURCE_ROOT
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
    # The page's own words in every language of the catalogs (it has no catalog at run time).
    files[SCRIPT_PATH] = messages_script(source_root / "translations")
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
    *, out_path: Path, service_host: str | None = None, source_root: Path = SOURCE_ROOT
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
