"""A big file's lines parsed and validated in worker processes give every line the fate, and
every batch the records, that reading them here does."""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from plugin.customers import csv_reading
from plugin.customers.bulk_work import worker_pool
from plugin.customers.csv_batches import Batches, ImportReport
from plugin.customers.csv_reading import text_of
from plugin.customers.records import order_row

HEADER = "order_id,customer_id,placed_at,amount,category\n"


@pytest.fixture(scope="module")
def pool() -> Iterator[Any]:
    """Worker processes; where they cannot be forked (one CPU, or other threads running, as
    under xdist after a test that started some), threads run the same blocks through the
    same code, so the comparison still runs (only the pickling is not exercised)."""
    with worker_pool(True) as pool:
        if pool is not None:
            yield pool
            return
    with ThreadPoolExecutor(max_workers=2) as threads:
        yield threads


def _line(rng: random.Random, number: int) -> str:
    order = f"O{rng.randint(1, number + 5)}"  # some ids named twice
    amount = rng.choice(["12.50", "3", "-1", "x"]) if rng.random() < 0.1 else "9.99"
    line = f"{order},C{rng.randint(1, 50)},2024-0{rng.randint(1, 9)}-01,{amount},Books"
    roll = rng.random()
    if roll < 0.02:
        return ""
    if roll < 0.04:
        return line + ",too,many"
    if roll < 0.05:
        return line.replace("Books", '"Bo"oks')
    if roll < 0.06:
        return line.replace("Books", '"Books')  # a quote left open
    if roll < 0.07:
        return line.replace("Books", '"Bo\nok"')  # a record over two lines
    return line


def _read(data: bytes, pool: Any, size: int) -> tuple[list[Any], tuple[Any, ...]]:
    text, _encoding = text_of(io.BytesIO(data))
    text.readline()
    report = ImportReport(kind="orders")
    batches = Batches(text, HEADER.strip().split(","), ",", report, size)
    try:
        got = list(batches.records(order_row, pool))
    finally:
        batches.close()
    report.problems.sort(key=lambda problem: problem.line)
    return got, (report.rows, report.problems)


@pytest.mark.parametrize("seed", range(16))
def test_lines_parsed_in_workers_fare_as_read_here(
    seed: int, pool: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    monkeypatch.setattr(csv_reading, "BLOCK_LINES", rng.choice([3, 17, 100]))
    clean = seed % 3 == 0
    lines = [_line(rng, n) for n in range(rng.randint(50, 600))]
    if clean:
        lines = [line for line in lines if '"' not in line]
    data = (HEADER + "\n".join(lines) + "\n").encode()
    if seed % 4 == 1:  # text that stops decoding somewhere after the first read's 8 KiB
        data = (
            HEADER.encode() + b"x1,C1,2024-01-01,1,A\n" * 500 + data[len(HEADER) :] + b"\xff\xfe,\n"
        )
    size = rng.choice([7, 50, 1000])
    here = _read(data, None, size)
    assert _read(data, pool, size) == here
    assert here[1][0] > 0 and here[0]
