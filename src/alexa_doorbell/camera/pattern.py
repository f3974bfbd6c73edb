"""The test pattern: colour bars, a moving bar, and a machine-readable stamp.

Every frame carries a 96-bit stamp as a grid of black and white cells across
the top (24 columns x 4 rows): the frame counter (32 bits), the wall-clock
time in milliseconds since the epoch (48 bits) and a CRC-16 of both. Cells are
large enough to survive H.264 compression, so a viewer can decode them from
the luma plane with :func:`read_stamp` and measure glass-to-glass latency.
The same numbers are also written as text for people. Pure numpy; no I/O.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

COLS, ROWS = 24, 4
BITS = COLS * ROWS  # 32 counter + 48 clock + 16 CRC
Y_BLACK, Y_WHITE = 16, 235

# 5x7 glyphs for the human-readable line.
_FONT = {
    "0": ["01110", "10001", "10011", "10101", "11001", "10001", "01110"],
    "1": ["00100", "01100", "00100", "00100", "00100", "00100", "01110"],
    "2": ["01110", "10001", "00001", "00010", "00100", "01000", "11111"],
    "3": ["11110", "00001", "00001", "01110", "00001", "00001", "11110"],
    "4": ["00010", "00110", "01010", "10010", "11111", "00010", "00010"],
    "5": ["11111", "10000", "11110", "00001", "00001", "10001", "01110"],
    "6": ["00110", "01000", "10000", "11110", "10001", "10001", "01110"],
    "7": ["11111", "00001", "00010", "00100", "01000", "01000", "01000"],
    "8": ["01110", "10001", "10001", "01110", "10001", "10001", "01110"],
    "9": ["01110", "10001", "10001", "01111", "00001", "00010", "01100"],
    ":": ["00000", "01100", "01100", "00000", "01100", "01100", "00000"],
    ".": ["00000", "00000", "00000", "00000", "00000", "01100", "01100"],
    "#": ["01010", "01010", "11111", "01010", "11111", "01010", "01010"],
    " ": ["00000"] * 7,
    # letters of the reconnecting slate (camera/slate.py)
    "C": ["01110", "10001", "10000", "10000", "10000", "10001", "01110"],
    "E": ["11111", "10000", "10000", "11110", "10000", "10000", "11111"],
    "G": ["01110", "10001", "10000", "10111", "10001", "10001", "01111"],
    "I": ["01110", "00100", "00100", "00100", "00100", "00100", "01110"],
    "N": ["10001", "11001", "10101", "10011", "10001", "10001", "10001"],
    "O": ["01110", "10001", "10001", "10001", "10001", "10001", "01110"],
    "R": ["11110", "10001", "10001", "11110", "10100", "10010", "10001"],
    "S": ["01111", "10000", "10000", "01110", "00001", "00001", "11110"],
    "T": ["11111", "00100", "00100", "00100", "00100", "00100", "00100"],
}
_GLYPHS = {ch: np.array([[c == "1" for c in row] for row in rows]) for ch, rows in _FONT.items()}


def glyph(ch: str) -> np.ndarray:
    """The 7x5 boolean picture of a character (blank for one the font lacks)."""
    return _GLYPHS.get(ch, _GLYPHS[" "])


# (Y, U, V) of the classic bars: white, yellow, cyan, green, magenta, red, blue, black.
_BARS = [
    (180, 128, 128),
    (162, 44, 142),
    (131, 156, 44),
    (112, 72, 58),
    (84, 184, 198),
    (65, 100, 212),
    (35, 212, 114),
    (16, 128, 128),
]


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


@dataclass(frozen=True)
class Stamp:
    counter: int
    wallclock_ms: int

    def bits(self) -> list[int]:
        body = (self.counter & 0xFFFFFFFF).to_bytes(4, "big") + (
            self.wallclock_ms & 0xFFFFFFFFFFFF
        ).to_bytes(6, "big")
        word = int.from_bytes(body + crc16(body).to_bytes(2, "big"), "big")
        return [(word >> (BITS - 1 - i)) & 1 for i in range(BITS)]

    @classmethod
    def from_bits(cls, bits: list[int]) -> Stamp | None:
        word = 0
        for b in bits:
            word = (word << 1) | (b & 1)
        raw = word.to_bytes(12, "big")
        if crc16(raw[:10]) != int.from_bytes(raw[10:], "big"):
            return None
        return cls(int.from_bytes(raw[:4], "big"), int.from_bytes(raw[4:10], "big"))


def stamp_layout(width: int, height: int) -> tuple[int, int]:
    """(cell width, cell height) in pixels for a frame size; even numbers."""
    cw = max(4, (width // COLS) & ~1)
    ch = max(6, (height // 30) & ~1)
    return cw, ch


def read_stamp(luma: np.ndarray) -> Stamp | None:
    """Decode the stamp from a frame's luma plane (H x W uint8); None if unreadable."""
    h, w = luma.shape[:2]
    cw, ch = stamp_layout(w, h)
    if ROWS * ch > h or COLS * cw > w:
        return None
    bits = []
    for r in range(ROWS):
        for c in range(COLS):
            y0, x0 = r * ch + ch // 4, c * cw + cw // 4
            cell = luma[y0 : y0 + max(1, ch // 2), x0 : x0 + max(1, cw // 2)]
            bits.append(1 if float(cell.mean()) > (Y_BLACK + Y_WHITE) / 2 else 0)
    return Stamp.from_bits(bits)


class TestPattern:
    """Renders yuv420p frames of the test pattern (as one H*3/2 x W array)."""

    __test__ = False  # not a pytest class

    def __init__(self, width: int, height: int) -> None:
        if width % 2 or height % 2:
            raise ValueError("test pattern width and height must be even")
        self.width, self.height = width, height
        self._y = np.empty((height, width), np.uint8)
        self._u = np.empty((height // 2, width // 2), np.uint8)
        self._v = np.empty((height // 2, width // 2), np.uint8)
        for i, (y, u, v) in enumerate(_BARS):
            x0, x1 = i * width // len(_BARS), (i + 1) * width // len(_BARS)
            self._y[:, x0:x1] = y
            self._u[:, x0 // 2 : x1 // 2] = u
            self._v[:, x0 // 2 : x1 // 2] = v
        self.cell = stamp_layout(width, height)
        self.scale = max(1, height // 120)

    def render(self, counter: int, wallclock: float | None = None) -> np.ndarray:
        now = time.time() if wallclock is None else wallclock
        w, h = self.width, self.height
        buf = np.empty((h * 3 // 2, w), np.uint8)
        y = buf[:h]
        y[:] = self._y
        uv = buf[h:].reshape(2, h // 2, w // 2)  # planar U then V, contiguous
        uv[0] = self._u
        uv[1] = self._v
        # moving bar: motion for the encoder and the eye
        bw = max(8, w // 20) & ~1
        x = (counter * 4) % max(1, w - bw) & ~1
        y[h // 2 :, x : x + bw] = 235
        uv[:, h // 4 :, x // 2 : (x + bw) // 2] = 128
        # stamp
        cw, ch = self.cell
        stamp_h = ROWS * ch
        y[:stamp_h] = Y_BLACK
        uv[:, : stamp_h // 2] = 128
        for i, bit in enumerate(Stamp(counter, int(now * 1000)).bits()):
            if bit:
                r, c = divmod(i, COLS)
                y[r * ch : (r + 1) * ch, c * cw : (c + 1) * cw] = Y_WHITE
        # human-readable line under the stamp
        t = time.localtime(now)
        ms = int(now * 1000) % 1000
        text = f"#{counter:06d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{ms:03d}"
        self._text(y, uv, text, stamp_h + 2 * self.scale)
        return buf

    def _text(self, y: np.ndarray, uv: np.ndarray, text: str, top: int) -> None:
        s = self.scale
        gw, gh = 6 * s, 8 * s
        width = min(len(text), (self.width - 4) // gw)
        if top + gh > self.height:
            return
        y[top : top + gh, 0 : width * gw + 2 * s] = Y_BLACK
        uv[:, top // 2 : (top + gh) // 2 + 1, 0 : (width * gw + 2 * s) // 2 + 1] = 128
        for i, ch in enumerate(text[:width]):
            glyph = np.kron(_GLYPHS.get(ch, _GLYPHS[" "]), np.ones((s, s), bool))
            x0 = s + i * gw
            region = y[top + s // 2 : top + s // 2 + 7 * s, x0 : x0 + 5 * s]
            region[glyph] = Y_WHITE
