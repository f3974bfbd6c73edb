"""A process of simulated Echo Shows for the camera benchmark.

Runs outside the agent's process (and outside the benchmark's) so viewer work
does not compete with the measurement inside one interpreter. Settings come
from the environment (``ALEXA_DOORBELL_*``); offers go through
SendAlexaOfferToMaster as the skill sends them. Commands on stdin, one JSON
reply per line on stdout:

    open <n> <first-id> [talk]
                          open n viewers      -> {"answer_ms": [...]}
                          talk: "off" (watch only, no audio sent: the default),
                          "tone" (talk-back all the time) or "silence"
    frames                frames per viewer   -> {"frames": [...]}
    close                 close all viewers   -> {"closed": n}
    exit

With ``--no-decode`` video is depacketized and reassembled into frames
(every RTP packet is received, decrypted and acknowledged as usual) but not
decoded: 10 decoders of 720p30 would need more than a 2-core machine has, and
starved viewers send PLIs and NACKs that inflate the agent's own CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

import av


class _CountingDecoder:
    """Stands in for aiortc's H.264 decoder: one tiny frame per received frame."""

    def __init__(self) -> None:
        self._frame = av.VideoFrame(16, 16, "yuv420p")

    def decode(self, encoded_frame: Any) -> list[av.VideoFrame]:
        return [self._frame]


def _skip_video_decoding() -> None:
    from alexa_doorbell.camera import rtc_hooks

    real = rtc_hooks.decoder_factory()

    def get_decoder(codec: Any) -> Any:
        return _CountingDecoder() if codec.mimeType.lower().startswith("video/") else real(codec)

    rtc_hooks.set_decoder_factory(get_decoder)


async def main(decode: bool) -> None:
    from alexa_doorbell.cloud.echo import EchoShow
    from alexa_doorbell.config import load_settings
    from alexa_doorbell.kvs import api
    from alexa_doorbell.skill.rtc import sender_client_id

    if not decode:
        _skip_video_decoding()
    settings = load_settings()
    cam = settings.cameras[0]
    kv = api.kinesisvideo_client(settings.boto_session(), settings.endpoint_url())
    arn = api.describe_channel_arn(kv, cam.channel_name)
    sig = api.signaling_client(
        settings.boto_session(), api.get_channel_endpoints(kv, arn, "VIEWER").https
    )
    echoes: list[EchoShow] = []
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def reply(obj: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    async def watch(i: int, talk: str | None) -> EchoShow:
        echo = EchoShow(talk=talk)
        peer = sender_client_id(f"bench-{i}")
        await echo.watch(
            lambda offer: asyncio.to_thread(api.send_alexa_offer_to_master, sig, arn, peer, offer)
        )
        return echo

    while line := (await reader.readline()).decode().split():
        cmd = line[0]
        if cmd == "open":
            n, first = int(line[1]), int(line[2])
            talk = line[3] if len(line) > 3 else "off"
            new = [await watch(first + i, None if talk == "silence" else talk) for i in range(n)]
            await asyncio.gather(*(e.wait_frames(1, timeout=10) for e in new))
            echoes += new
            reply({"answer_ms": [round(e.report().answer_ms, 1) for e in new]})
        elif cmd == "frames":
            reply({"frames": [e.report().frames for e in echoes]})
        elif cmd == "close":
            for e in echoes:
                await e.close()
            reply({"closed": len(echoes)})
            echoes = []
        elif cmd == "exit":
            break
    for e in echoes:
        await e.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--no-decode", action="store_true")
    asyncio.run(main(decode=not p.parse_args().no_decode))
