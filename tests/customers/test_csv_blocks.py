"""Reading a CSV file a block of lines at a time gives every line the fate reading it one record
at a time does (`csv_reading._rows_one_by_one`, which defines the refusals)."""

from __future__ import annotations

import io
import random
from typing import TextIO

import pytest

from plugin.customers import csv_reading
from plugin.customers.csv_reading import physical_row_blocks

PIECES = ["a", "b,c", '"q"', '"x,y"', '"open', 'close"', '""', '"a"b', "", ",", 'x"y', '"é"']


Fates = tuple[list[tuple[int, list[str]]], list[tuple[int, str]]]


def _fates(text: TextIO, *, blocks: bool) -> Fates:
    refused: list[tuple[int, str]] = []

    def refuse(line: int, message: str) -> None:
        refused.append((line, message))

    if blocks:
        rows = [
            row
            for block in physical_row_blocks(
                text,
                delimiter=",",
                first_line=2,
                refuse=refuse,
            )
            for row in block
        ]
    else:
        rows = list(csv_reading._rows_one_by_one(iter(text), ",", 2, refuse))
    return rows, refused


def _file(rng: random.Random, lines: int, *, quirks: bool) -> str:
    out = []
    for _ in range(lines):
        if quirks and rng.random() < 0.2:
            out.append(",".join(rng.choice(PIECES) for _ in range(rng.randint(0, 3))))
        else:
            out.append(f"{rng.randint(0, 99)},{rng.choice(['p', 'q r', ''])}")
    ending = rng.choice(["\n", "\r\n"])
    return ending.join(out) + rng.choice(["", ending])


@pytest.mark.parametrize("seed", range(40))
def test_blocks_and_one_by_one_agree(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)
    monkeypatch.setattr(csv_reading, "BLOCK_LINES", rng.choice([1, 2, 3, 7, 50]))
    text = _file(rng, rng.randint(0, 120), quirks=seed % 4 != 0)
    assert _fates(io.StringIO(text, newline=""), blocks=True) == _fates(
        io.StringIO(text, newline=""), blocks=False
    )


@pytest.mark.parametrize("seed", range(12))
def test_text_that_stops_decoding_is_refused_where_it_stops(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    monkeypatch.setattr(csv_reading, "BLOCK_LINES", rng.choice([1, 3, 50]))
    head = _file(rng, rng.randint(1, 60), quirks=True)
    # Past the first read of the text (8 KiB), and sometimes just after a quote left open.
    lead = b"x,y\n" * rng.randint(2_500, 4_000)
    opened = b'"open\n' if seed % 2 else b""
    data = lead + head.encode() + b"\n" + opened + b"\xff\xfebad,line\nmore\n" + b"x,y\n" * 5000

    def text() -> io.TextIOWrapper:
        return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline="")

    blocks, one_by_one = _fates(text(), blocks=True), _fates(text(), blocks=False)
    assert blocks == one_by_one
    assert any("is not UTF-8" in message for _line, message in one_by_one[1])


def test_a_clean_file_is_read_by_blocks_without_the_slow_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def slow(*_args: object) -> None:
        raise AssertionError("read one record at a time")

    monkeypatch.setattr(csv_reading, "_rows_one_by_one", slow)
    monkeypatch.setattr(csv_reading, "BLOCK_LINES", 4)
    text = io.StringIO('1,a\n\n2,"b, c"\r\n3,c\n4,d\n5,e', newline="")
    rows, refused = _fates(text, blocks=True)
    assert rows == [
        (2, ["1", "a"]),
        (4, ["2", "b, c"]),
        (5, ["3", "c"]),
        (6, ["4", "d"]),
        (7, ["5", "e"]),
    ]
    assert refused == []


@pytest.mark.parametrize("block_lines", [1, 2, 3, 100])
@pytest.mark.parametrize(
    "text",
    [
        '1,"open\n2,b\n3,close"\n4,d\n',
        '1,a\n2,"open\n3,b\n',
        '1,"a"b\n2,c\n',
        '1,a\n\n\n2,"x\r\ny"\r\n3,c',
        '"a\n"\n"b\n',
    ],
)
def test_records_over_several_lines_and_bad_quotes(
    text: str, block_lines: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_reading, "BLOCK_LINES", block_lines)
    blocks = _fates(io.StringIO(text, newline=""), blocks=True)
    assert blocks == _fates(io.StringIO(text, newline=""), blocks=False)
    assert blocks[1]  # each has a refusal


def test_seen_ids_name_the_first_line_of_each_id_named_before() -> None:
    from plugin.customers.csv_batches import SeenIds

    seen = SeenIds()
    try:
        assert seen.add([("a", 2), ("b", 3), ("c", 4)]) == {}
        # Named in an earlier batch, twice in this one, both, and new ids that look like
        # numbers or hold quotes and accents.
        assert seen.add([("b", 5), ("d", 6), ("d", 7), ("a", 8), ("a", 9), ("07", 10)]) == {
            5: 3,
            7: 6,
            8: 2,
            9: 8,  # as the batch names it first
        }
        assert seen.add([('é"\\x', 11), ("7", 12), ("07", 13), ('é"\\x', 14)]) == {13: 10, 14: 11}
        assert seen.add([]) == {}
    finally:
        seen.close()
