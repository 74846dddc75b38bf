"""Tiny real PNG pictures for pages that show thumbnails (no imaging library needed)."""

from __future__ import annotations

import struct
import zlib


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """Return a PNG of one colour, with a darker diagonal band so screenshots show its shape."""
    rows = []
    for y in range(height):
        row = bytearray([0])  # filter type 0 (none) for each scanline
        for x in range(width):
            band = abs(x * height - y * width) < width * height // 12
            row += bytes(c // 2 for c in rgb) if band else bytes(rgb)
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )
