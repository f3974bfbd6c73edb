"""A tiny RTSP camera for tests: H.264 over RTP, TCP interleaved, on loopback.

It answers OPTIONS / DESCRIBE (an SDP with ``profile-level-id`` and
``sprop-parameter-sets``) / SETUP (only ``RTP/AVP/TCP;interleaved=0-1``) /
PLAY / GET_PARAMETER / TEARDOWN, then streams the given access units in real
time, looped, as RTP (RFC 6184: single NAL unit packets and FU-A fragments,
marker bit on the last packet of a picture). With ``inband_parameters=False``
SPS and PPS are removed from the stream and exist only in the SDP, as many
cameras do.

    clip = encode_clip(profile="Baseline")
    with RtspTestServer(clip) as cam:
        url = cam.url               # rtsp://127.0.0.1:<port>/stream

As a process of its own (a camera a test can kill and start again on the same port):
``python -m tests.helpers.rtsp_server --port N`` prints its URL once it listens.
"""

from __future__ import annotations

import base64
import contextlib
import fractions
import socket
import socketserver
import struct
import threading
import time
from dataclasses import dataclass, field

import av

from alexa_doorbell.camera.h264 import (
    NAL_PPS,
    NAL_SPS,
    nal_type,
    parse_sps,
    split_annexb,
)
from alexa_doorbell.camera.pattern import TestPattern

RTP_MAX_PAYLOAD = 1200
PAYLOAD_TYPE = 96


@dataclass
class Clip:
    """Access units in decoding order: (Annex B bytes, pts in 1/90000 s, keyframe)."""

    units: list[tuple[bytes, int, bool]]
    fps: int
    width: int
    height: int
    sps: bytes = b""
    pps: bytes = b""

    @property
    def duration(self) -> int:  # 1/90000 s
        return len(self.units) * 90000 // self.fps


def encode_clip(
    *,
    profile: str = "Baseline",
    bframes: int = 0,
    frames: int = 45,
    fps: int = 15,
    width: int = 320,
    height: int = 240,
    gop: int = 15,
) -> Clip:
    """A test-pattern clip (frame counter burned in) encoded with libx264 now."""
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.time_base = fractions.Fraction(1, fps)
    codec.framerate = fractions.Fraction(fps, 1)
    codec.profile = profile
    codec.options = {
        "preset": "veryfast",
        "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes={bframes}",
    }
    pattern = TestPattern(width, height)
    packets: list[av.Packet] = []
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(pattern.render(i + 1, 0.0), format="yuv420p")
        frame.pts = i
        packets += codec.encode(frame)
    packets += codec.encode(None)
    clip = Clip([], fps, width, height)
    for p in packets:
        data = bytes(p)
        for nal in split_annexb(data):
            if nal_type(nal) == NAL_SPS and not clip.sps:
                clip.sps = nal
            elif nal_type(nal) == NAL_PPS and not clip.pps:
                clip.pps = nal
        clip.units.append((data, p.pts * 90000 // fps, p.is_keyframe))
    return clip


def rtp_payloads(nal: bytes) -> list[bytes]:
    """One NAL unit as RTP payloads: itself, or FU-A fragments (RFC 6184 §5.8)."""
    if len(nal) <= RTP_MAX_PAYLOAD:
        return [nal]
    indicator = (nal[0] & 0xE0) | 28
    kind = nal[0] & 0x1F
    body = nal[1:]
    chunks = [body[i : i + RTP_MAX_PAYLOAD - 2] for i in range(0, len(body), RTP_MAX_PAYLOAD - 2)]
    out = []
    for i, chunk in enumerate(chunks):
        header = kind | (0x80 if i == 0 else 0) | (0x40 if i == len(chunks) - 1 else 0)
        out.append(bytes([indicator, header]) + chunk)
    return out


@dataclass
class _Stats:
    sessions: int = 0
    rtp_packets: int = 0
    fu_a_packets: int = 0
    requests: list[str] = field(default_factory=list)


class RtspTestServer:
    """``live``: each session starts where the stream is now (mid-GOP, as a real camera
    that encodes all the time), not at the clip's first IDR."""

    def __init__(
        self,
        clip: Clip,
        *,
        inband_parameters: bool = True,
        loop: bool = True,
        port: int = 0,
        live: bool = False,
    ) -> None:
        self.clip, self.inband, self.loop, self.live = clip, inband_parameters, loop, live
        self.t0 = time.monotonic()  # a live camera's stream began here
        self.stats = _Stats()
        server = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                server._serve(self.request, self.rfile)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", port), Handler)
        self.port = self._server.server_address[1]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/stream"

    def sdp(self) -> str:
        sps = parse_sps(self.clip.sps)
        sprop = ",".join(base64.b64encode(n).decode() for n in (self.clip.sps, self.clip.pps))
        return (
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=test camera\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
            "a=control:*\r\n"
            f"m=video 0 RTP/AVP {PAYLOAD_TYPE}\r\n"
            f"a=rtpmap:{PAYLOAD_TYPE} H264/90000\r\n"
            f"a=fmtp:{PAYLOAD_TYPE} packetization-mode=1;profile-level-id={sps.profile_level_id};"
            f"sprop-parameter-sets={sprop}\r\n"
            f"a=framerate:{self.clip.fps}\r\n"
            "a=control:trackID=0\r\n"
        )

    # -- life cycle --------------------------------------------------------------
    def start(self) -> RtspTestServer:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> RtspTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- one client --------------------------------------------------------------
    def _serve(self, sock: socket.socket, rfile: object) -> None:
        lock = threading.Lock()
        playing = threading.Event()
        done = threading.Event()
        session = f"{12345678 + self.stats.sessions}"
        self.stats.sessions += 1
        streamer = threading.Thread(
            target=self._stream, args=(sock, lock, playing, done), daemon=True
        )
        streamer.start()
        try:
            while not self._stop.is_set():
                request = self._read_request(rfile)
                if request is None:
                    break
                method, headers = request
                self.stats.requests.append(method)
                cseq = headers.get("cseq", "0")
                extra: dict[str, str] = {}
                body = ""
                if method == "OPTIONS":
                    extra["Public"] = "OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER, TEARDOWN"
                elif method == "DESCRIBE":
                    body = self.sdp()
                    extra["Content-Type"] = "application/sdp"
                    extra["Content-Base"] = self.url + "/"
                elif method == "SETUP":
                    transport = headers.get("transport", "")
                    if "TCP" not in transport.upper():
                        self._reply(sock, lock, cseq, 461, "Unsupported Transport")
                        continue
                    extra["Transport"] = "RTP/AVP/TCP;unicast;interleaved=0-1"
                    extra["Session"] = f"{session};timeout=60"
                elif method == "PLAY":
                    extra["Session"] = session
                    extra["Range"] = "npt=0.000-"
                elif method == "TEARDOWN":
                    self._reply(sock, lock, cseq, 200, "OK", {"Session": session})
                    break
                elif method != "GET_PARAMETER":
                    self._reply(sock, lock, cseq, 405, "Method Not Allowed")
                    continue
                self._reply(sock, lock, cseq, 200, "OK", extra, body)
                if method == "PLAY":
                    playing.set()
        except OSError:
            pass
        finally:
            done.set()
            playing.set()
            streamer.join(2)

    @staticmethod
    def _read_request(rfile: object) -> tuple[str, dict[str, str]] | None:
        read = rfile.read  # type: ignore[attr-defined]
        readline = rfile.readline  # type: ignore[attr-defined]
        while True:
            first = read(1)
            if not first:
                return None
            if first == b"$":  # interleaved RTCP from the client: skip it
                header = read(3)
                if len(header) < 3:
                    return None
                read(struct.unpack("!H", header[1:])[0])
                continue
            line = first + readline()
            if line.strip():
                break
        method = line.decode("latin-1").split()[0]
        headers: dict[str, str] = {}
        while (h := readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = h.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if n := int(headers.get("content-length", "0")):
            read(n)
        return method, headers

    @staticmethod
    def _reply(
        sock: socket.socket,
        lock: threading.Lock,
        cseq: str,
        code: int,
        reason: str,
        headers: dict[str, str] | None = None,
        body: str = "",
    ) -> None:
        lines = [f"RTSP/1.0 {code} {reason}", f"CSeq: {cseq}", "Server: test-camera"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if body:
            lines.append(f"Content-Length: {len(body.encode())}")
        data = ("\r\n".join(lines) + "\r\n\r\n" + body).encode()
        with lock:
            sock.sendall(data)

    def _stream(
        self,
        sock: socket.socket,
        lock: threading.Lock,
        playing: threading.Event,
        done: threading.Event,
    ) -> None:
        playing.wait()
        seq, ssrc, base = 1000, 0x1234ABCD, 90000
        start = time.monotonic()
        n = 0
        offset = 0
        units = self.clip.units
        if self.live:  # from the picture the camera is at now, timestamps from there
            at = int((start - self.t0) * self.clip.fps) % len(units)
            step = 90000 // self.clip.fps  # no B-frames: presentation order is decoding order
            units = [(d, i * step, k) for i, (d, _, k) in enumerate(units[at:] + units[:at])]
        while not done.is_set() and not self._stop.is_set():
            for data, pts, _key in units:
                if done.is_set() or self._stop.is_set():
                    return
                # Decoding order paced at the frame rate, timestamps from the pts.
                delay = start + n / self.clip.fps - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                n += 1
                nals = [
                    nal
                    for nal in split_annexb(data)
                    if self.inband or nal_type(nal) not in (NAL_SPS, NAL_PPS)
                ]
                payloads = [p for nal in nals for p in rtp_payloads(nal)]
                timestamp = (base + offset + pts) & 0xFFFFFFFF
                for i, payload in enumerate(payloads):
                    marker = 0x80 if i == len(payloads) - 1 else 0
                    rtp = struct.pack("!BBHII", 0x80, marker | PAYLOAD_TYPE, seq, timestamp, ssrc)
                    seq = (seq + 1) & 0xFFFF
                    frame = b"$\x00" + struct.pack("!H", len(rtp) + len(payload)) + rtp + payload
                    self.stats.rtp_packets += 1
                    if payload[0] & 0x1F == 28:
                        self.stats.fu_a_packets += 1
                    try:
                        with lock:
                            sock.sendall(frame)
                    except OSError:
                        return
            if not self.loop:
                return
            offset += self.clip.duration
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def main() -> None:
    import argparse

    p = argparse.ArgumentParser(description="A loopback RTSP test camera until killed.")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--fps", type=int, default=15)
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--gop", type=int, default=1, help="seconds between IDRs")
    p.add_argument("--live", action="store_true", help="a session starts mid-GOP, where it is")
    args = p.parse_args()
    gop = args.fps * args.gop
    clip = encode_clip(
        fps=args.fps, gop=gop, frames=max(45, 2 * gop), width=args.width, height=args.height
    )
    with RtspTestServer(clip, port=args.port, live=args.live) as cam:
        print(cam.url, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
