"""Reading CSV files as people have them: their encoding, their delimiter, line by line.

- `text_of`: a file's bytes as text. UTF-8 (with or without a byte order mark) is read as
  such; anything else is decoded in the encoding it most likely has, which is reported, so
  a file Excel saved as "CSV" on Windows (Windows-1252) imports instead of being refused.
- `sniff_delimiter`: `,`, `;` (Excel in most of Europe) or a tab, from the header line.
- `physical_rows`: the rows with the physical line they are on. No field we import may hold
  a line break, so a record never spans lines: a quote that opens and does not close on its
  line refuses that line alone, and the lines after it are read as the rows they are,
  instead of being swallowed into one field of the broken row (what csv.reader would do).
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import IO, BinaryIO, TextIO, cast

import charset_normalizer

DELIMITERS = (",", ";", "\t")
DELIMITER_NAMES = {",": "commas", ";": "semicolons", "\t": "tabs"}
SAMPLE_BYTES = 256 * 1024
# Lines parsed together while each is one record (see physical_row_blocks).
BLOCK_LINES = 10_000
# The names we report an encoding under; Python's codec names are not what people know.
ENCODING_NAMES = {
    "utf_8": "UTF-8",
    "utf-8-sig": "UTF-8",
    "utf_16": "UTF-16",
    "cp1252": "Windows-1252",
    "latin_1": "Latin-1 (ISO-8859-1)",
}
# A quoted field runs to the end of its line at most; this bounds what one bad line holds.
csv.field_size_limit(1 << 20)


class UnreadableLine(ValueError):
    """A physical line that is not one CSV record: the reason, for the report."""


def text_of(stream: IO[bytes] | TextIO) -> tuple[TextIO, str]:
    """The stream as text, and the name of the encoding it was read in.

    A text stream is taken as it is ("text"). A binary one is sampled: UTF-8 if the sample is
    UTF-8; else Windows-1252 if it decodes as such (a superset of Latin-1's printable
    characters, and what Excel writes on Windows); else what charset-normalizer finds; else
    Latin-1, which decodes any byte. The stream is read from its start again afterwards (or,
    if it cannot seek, from the sample kept in memory).
    """
    if isinstance(stream, io.TextIOBase):
        return stream, "text"
    binary = cast(IO[bytes], stream)
    sample = binary.read(SAMPLE_BYTES)
    if binary.seekable():
        binary.seek(0)
    else:
        binary = io.BytesIO(sample + binary.read())
    encoding = _encoding_of(sample)
    text = io.TextIOWrapper(cast(BinaryIO, binary), encoding=encoding, newline="")
    return text, ENCODING_NAMES.get(encoding, encoding)


def _encoding_of(sample: bytes) -> str:
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf_16"
    try:
        # Not final: the sample may end inside a character.
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8-sig"  # reads a byte order mark if there is one, and none if not
    except UnicodeDecodeError:
        pass
    try:
        sample.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        pass
    best = charset_normalizer.from_bytes(sample).best()
    return best.encoding if best is not None else "latin_1"


def sniff_delimiter(header_line: str) -> str:
    """The delimiter the header line uses most among `,` `;` and tab (`,` when none)."""
    unquoted = header_line.split('"')[::2]  # what lies outside quotes
    counts = {d: sum(part.count(d) for part in unquoted) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


class _Lines:
    """The stream's lines with their numbers; lines pushed back are read again first."""

    def __init__(self, stream: Iterable[str], first_number: int) -> None:
        self._stream = iter(stream)
        self._again: deque[tuple[int, str]] = deque()
        self.next_number = first_number
        # The lines of the record being read (csv.reader takes a line at a time, as needed).
        self.record: list[tuple[int, str]] = []

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self._again:
            number, line = self._again.popleft()
        else:
            line = next(self._stream)
            number = self.next_number
            self.next_number += 1
        self.record.append((number, line))
        return line

    def push_back(self, lines: list[tuple[int, str]]) -> None:
        self._again.extendleft(reversed(lines))


def physical_rows(
    stream: TextIO,
    *,
    delimiter: str,
    first_line: int,
    refuse: Callable[[int, str], None],
) -> Iterator[tuple[int, list[str]]]:
    """Each row with the number of the physical line it is on; blank lines are skipped.

    A line that is not one complete record (a quote left open, text after a closing quote)
    is passed to `refuse` with its number and the reason, and reading goes on with the next
    line. Text that stops decoding ends the reading, as one refusal naming the line.
    """
    for block in physical_row_blocks(
        stream, delimiter=delimiter, first_line=first_line, refuse=refuse
    ):
        yield from block


def physical_row_blocks(
    stream: Iterable[str],
    *,
    delimiter: str,
    first_line: int,
    refuse: Callable[[int, str], None],
) -> Iterator[list[tuple[int, list[str]]]]:
    """`physical_rows`, a block of up to BLOCK_LINES lines' rows at a time.

    Lines are read a block at a time and parsed by csv.reader in one go; a block where each
    line is one record (what almost every file is) needs nothing more. From the first block
    that is not (a record over several lines, a line csv refuses, text that stops decoding)
    on, the lines are read one record at a time as `_rows_one_by_one` does, which is what
    the refusals are defined by.
    """
    lines = iter(stream)
    number = first_line
    while True:
        block: list[str] = []
        try:
            for line in itertools.islice(lines, BLOCK_LINES):
                block.append(line)
        except UnicodeDecodeError as error:
            rest: Iterator[str] = itertools.chain(block, failing_lines(error))
            yield from _blocks(_rows_one_by_one(rest, delimiter, number, refuse))
            return
        if not block:
            return
        reader = csv.reader(block, delimiter=delimiter, strict=True)
        try:
            rows = list(reader)
        except csv.Error:
            rows = []
        if len(rows) != len(block) or reader.line_num != len(block):
            # Not one record a line: from here on, as defined.
            rest = itertools.chain(block, lines)
            yield from _blocks(_rows_one_by_one(rest, delimiter, number, refuse))
            return
        numbers = range(number, number + len(block))
        if all(rows):
            yield list(zip(numbers, rows, strict=True))
        else:  # blank lines are skipped
            yield [(line, row) for line, row in zip(numbers, rows, strict=True) if row]
        number += len(block)


def failing_lines(error: Exception) -> Iterator[str]:
    """No lines: reading the next one raised `error` (the rest of a text that stopped
    decoding)."""
    yield from ()
    raise error


def _blocks(rows: Iterator[tuple[int, list[str]]]) -> Iterator[list[tuple[int, list[str]]]]:
    while block := list(itertools.islice(rows, BLOCK_LINES)):
        yield block


def _rows_one_by_one(
    stream: Iterator[str], delimiter: str, first_line: int, refuse: Callable[[int, str], None]
) -> Iterator[tuple[int, list[str]]]:
    """The rows, each line read as it comes (see `physical_rows`)."""
    lines = _Lines(stream, first_line)
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    record = lines.record
    while True:
        record.clear()
        try:
            row = next(reader)
        except StopIteration:
            if len(record) > 1:  # the last record was left open by a quote: read it again
                refuse(*_opened_quote(record))
                lines.push_back(record[1:])
                reader = csv.reader(lines, delimiter=delimiter, strict=True)
                continue
            return
        except UnicodeDecodeError as error:
            refuse(
                lines.next_number,
                f"is not {error.encoding.upper()} text from here on; "
                "the rest of the file was not read",
            )
            return
        except csv.Error as error:
            if not record:
                return
            if len(record) > 1 or "end of data" in str(error):
                refuse(*_opened_quote(record))
            else:
                refuse(record[0][0], f"not valid CSV: {error}")
            lines.push_back(record[1:])
            continue
        if len(record) > 1:
            refuse(*_opened_quote(record))
            lines.push_back(record[1:])
            continue
        if row:
            yield record[0][0], row


def _opened_quote(record: list[tuple[int, str]]) -> tuple[int, str]:
    number, _line = record[0]
    return (
        number,
        "a quote opens on this line and does not close on it (a field cannot span lines); "
        "the line was not imported, the lines after it were read on their own",
    )
