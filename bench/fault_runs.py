"""What the fault benches (`bench.delivery_fault`, `bench.gesture_fault`) share: their command
line's common options, one run per database in a folder of its own, and the JSON they print."""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def add_run_options(parser: argparse.ArgumentParser, *, kills: int, seed: int) -> None:
    """--database, --kills, --seed, --timeout and --output, as every fault bench takes them."""
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--kills", type=int, default=kills, help="workers SIGKILLed along the way")
    parser.add_argument("--seed", type=int, default=seed, help="the fake's fault sequence")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per database")
    parser.add_argument("--output", type=Path, help="also write the JSON here")


def run_per_database(
    database: str, prefix: str, run_one: Callable[[str, Path], dict[str, Any]]
) -> list[dict[str, Any]]:
    """Run on SQLite, PostgreSQL or both (`database`), each in an empty folder of its own."""
    kinds = ["sqlite", "postgresql"] if database == "both" else [database]
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        for kind in kinds:
            folder = Path(tmp) / kind
            folder.mkdir()
            results.append(run_one(kind, folder))
    return results


def print_results(document: dict[str, Any], output: Path | None) -> int:
    """Print the JSON (and write it to `output`); the exit status: 0 when every run passed."""
    text = json.dumps(document, indent=2)
    print(text)
    if output:
        output.write_text(text + "\n")
    return 0 if all(result["passed"] for result in document["results"]) else 1


def count_in_logs(folder: Path, text: str) -> int:
    """How often `text` appears in the folder's worker logs."""
    return sum(path.read_text(errors="replace").count(text) for path in folder.glob("*.log"))
