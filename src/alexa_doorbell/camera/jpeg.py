"""A video frame as a JPEG: the snapshot of the moment when no detector sent one.

    jpeg = encode_jpeg(frame)            # bytes for SnapshotStore.put
    jpeg = encode_jpeg(frame, qscale=8)  # smaller, coarser

FFmpeg's MJPEG encoder through PyAV (in PyAV's wheel, no other library). ``qscale``
is its fixed quantiser, 2 (best) to 31; the default 4 keeps a 720p doorstep
picture at roughly 100-200 kB.
"""

from __future__ import annotations

import av
from av.video.reformatter import VideoReformatter

DEFAULT_QSCALE = 4


def encode_jpeg(frame: av.VideoFrame, qscale: int = DEFAULT_QSCALE) -> bytes:
    """One baseline JPEG of ``frame`` (any pixel format; odd sizes are cropped by one)."""
    if not 2 <= qscale <= 31:
        raise ValueError(f"qscale must be 2-31, not {qscale}")
    width, height = frame.width & ~1, frame.height & ~1
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height = width, height
    codec.pix_fmt = "yuvj420p"  # full-range 4:2:0, what every JPEG decoder reads
    codec.qmin = codec.qmax = qscale
    # A converter of its own: ``frame.reformat`` uses one cached on the frame, and the
    # same frame may be converted in another thread at once (a press's snapshot and a
    # detection's; two calls into one SwsContext crashed the process).
    picture = VideoReformatter().reformat(frame, width=width, height=height, format="yuvj420p")
    packets = codec.encode(picture) + codec.encode(None)
    return b"".join(bytes(p) for p in packets)
