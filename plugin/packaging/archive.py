"""Reading an app package's files from the repository and writing its zip, for both helpdesks."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from pathlib import Path

from plugin.packaging.problems import Problem
from plugin.resources import source_root

# manifest.json and packaging/: the repository's root, or the copy inside an installed package.
SOURCE_ROOT = source_root()
# Both validators register this rule as an error.
SYMLINK_RULE = "package.symlink"
# A fixed timestamp makes two builds of the same sources byte-identical.
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)


def collect_package_files(package_dir: Path) -> tuple[dict[str, bytes], list[Problem]]:
    """Read every file under the package folder, keyed by its path in the zip; refuse symlinks."""
    files: dict[str, bytes] = {}
    problems: list[Problem] = []
    if package_dir.is_symlink():
        return files, [Problem(SYMLINK_RULE, f"{package_dir.name} is a symlink.")]
    for directory, dirnames, filenames in os.walk(package_dir):
        dirnames.sort()
        here = Path(directory)
        for name in sorted([*dirnames, *filenames]):
            path = here / name
            relative = path.relative_to(package_dir).as_posix()
            if path.is_symlink():
                problems.append(Problem(SYMLINK_RULE, f"{relative} is a symlink."))
            elif name in filenames and path.is_file():
                files[relative] = path.read_bytes()
    return files, problems


def write_zip(out_path: Path, manifest_text: str, files: Mapping[str, bytes]) -> None:
    """Write the package zip with manifest.json at its root, replacing any earlier build."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    # Written aside and renamed, so an interrupted build never leaves half a package behind.
    partial = out_path.with_name(out_path.name + ".partial")
    entries = [("manifest.json", manifest_text.encode("utf-8")), *sorted(files.items())]
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    partial.replace(out_path)
