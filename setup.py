"""Build hook: copy the files the service reads from the repository's root into the wheel.

Templates, static files, migrations, the app packages and the translations stay at the
repository's root (its layout is fixed); a wheel gets a copy of them inside the package, as
plugin/_bundled, which plugin.resources finds when the package is installed (with the
translations' .mo files compiled). An editable install runs from the checkout: no copy.
"""

from __future__ import annotations

import runpy
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# plugin/resources.py imports only the standard library: read the list from it, not twice.
BUNDLED: tuple[str, ...] = runpy.run_path(str(ROOT / "plugin" / "resources.py"))["BUNDLED"]
SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", ".DS_Store")


class BuildWithBundle(build_py):
    """build_py that also copies the BUNDLED files into plugin/_bundled of the build."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        bundle = Path(self.build_lib, "plugin", "_bundled")
        if bundle.exists():
            shutil.rmtree(bundle)
        bundle.mkdir(parents=True)
        for name in BUNDLED:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, bundle / name, ignore=SKIPPED)
            else:
                shutil.copy2(source, bundle / name)
        compile_catalogs(bundle / "translations")


def compile_catalogs(folder: Path) -> None:
    """Build each translation's .mo next to its .po: the checkout keeps only the .po files."""
    try:
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po
    except ImportError:  # Babel comes with Flask-Babel; without it the service speaks English
        return
    for po_path in folder.glob("*/LC_MESSAGES/*.po"):
        with po_path.open("rb") as po:
            catalog = read_po(po)
        with po_path.with_suffix(".mo").open("wb") as mo:
            write_mo(mo, catalog)


setup(cmdclass={"build_py": BuildWithBundle})
