"""Where the service's non-Python files are: templates, static files, migrations, app packages.

They live at the repository's root. A wheel carries a copy of them inside the package (setup.py
copies them to plugin/_bundled at build time), so an installed service finds them there. This
module imports only the standard library: setup.py reads BUNDLED from it without installing.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
BUNDLE_DIR = PACKAGE_DIR / "_bundled"
# Everything at the repository's root the running service reads, copied into every wheel.
BUNDLED = ("templates", "static", "migrations", "packaging", "manifest.json", "translations")


def source_root() -> Path:
    """The folder that holds templates/, static/, migrations/, packaging/ and manifest.json.

    The bundle inside an installed package; the repository's root in a checkout (and in an
    editable install, which runs from the checkout and has no bundle).
    """
    return BUNDLE_DIR if BUNDLE_DIR.is_dir() else PACKAGE_DIR.parent


def resource_path(name: str) -> Path:
    """The path of one of the BUNDLED folders or files, wherever the service runs from."""
    if name not in BUNDLED:
        raise ValueError(f"{name!r} is not one of the files a wheel carries: {BUNDLED}")
    return source_root() / name
