"""Draw the Zendesk app logos as PNGs with the standard library, so they can be regenerated."""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

BRAND = (0x0B, 0x4F, 0x8A)
INNER = (0xD6, 0xE6, 0xF4)
TRANSPARENT = (0, 0, 0, 0)
LOGO_SIZES = {"logo.png": 320, "logo-small.png": 128}


def logo_png(size: int) -> bytes:
    """Draw a rounded brand-blue square holding a lighter rounded square, as RGBA PNG bytes."""
    outer_radius = size * 0.18
    inset = size * 0.25
    inner_radius = size * 0.08
    rows = []
    for y in range(size):
        row = bytearray(b"\x00")  # filter type 0: bytes as they are
        for x in range(size):
            if _inside_rounded_square(x, y, inset, size - inset, inner_radius):
                row += bytes((*INNER, 255))
            elif _inside_rounded_square(x, y, 0, size, outer_radius):
                row += bytes((*BRAND, 255))
            else:
                row += bytes(TRANSPARENT)
        rows.append(bytes(row))
    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + _chunk(b"IEND", b"")
    )


def _inside_rounded_square(x: int, y: int, low: float, high: float, radius: float) -> bool:
    # Sample the pixel's centre so the shape is symmetric.
    px, py = x + 0.5, y + 0.5
    if not (low <= px < high and low <= py < high):
        return False
    nearest_x = min(max(px, low + radius), high - radius)
    nearest_y = min(max(py, low + radius), high - radius)
    return (px - nearest_x) ** 2 + (py - nearest_y) ** 2 <= radius**2


def _chunk(kind: bytes, data: bytes) -> bytes:
    checksum = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", checksum)


def write_logos(assets_dir: Path) -> None:
    """Write every logo into the package's assets folder."""
    for name, size in LOGO_SIZES.items():
        (assets_dir / name).write_bytes(logo_png(size))


if __name__ == "__main__":
    write_logos(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("packaging/zendesk/assets"))
