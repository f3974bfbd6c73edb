"""Who of a passed-through camera's viewers is on the keyframe bridge, and feeding it.

    joins = BridgedJoins(size=lambda: (w, h, fps), bitrate=lambda: uplink.target)
    joins.join(track)                    # a new viewer, a PLI, a stalled one
    await joins.packet(packet, tracks, holding=False)   # every camera access unit
    picture = await joins.picture(tracks)               # the current picture, decoded once

A viewer joining between the camera's IDRs is *bridged* (``track.bridged``): it gets
an IDR of the current picture at once, then the bridge's re-encoded pictures, and the
camera's own stream from its next IDR (the track switches there by itself). The
bridge decodes only while someone is bridged or a press holds it warm
(``holding``); otherwise nothing is decoded. The media work is camera/bridge.py's,
run off the event loop; one lock keeps a join and the camera's next packet in order.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable
from typing import Protocol

import av

from alexa_doorbell.camera.bridge import GopCache, KeyframeBridge
from alexa_doorbell.camera.shared import EncodedFrame, packetize_h264


class BridgeViewer(Protocol):
    """A viewer track as the bridge sees it (``fanout.FanoutVideoTrack``)."""

    bridged: bool
    waiting_keyframe: bool

    def deliver_packet(self, packet: EncodedFrame, *, bridged: bool = False) -> None: ...


class BridgedJoins:
    def __init__(
        self,
        *,
        size: Callable[[], tuple[int, int, float]],
        bitrate: Callable[[], int],
        preset: str = "veryfast",
    ) -> None:
        self._size, self._bitrate, self.preset = size, bitrate, preset
        self.gop = GopCache()
        self.bridge: KeyframeBridge | None = None
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._tracks: Iterable[BridgeViewer] = ()
        self.joins = 0  # IDRs made for viewers that joined (or asked) mid-GOP
        self.unmet = 0  # keyframe needs with no IDR seen yet: they wait for the camera's
        self.packets_out = 0

    def join(self, track: BridgeViewer, tracks: Iterable[BridgeViewer]) -> None:
        """``track`` needs a keyframe of the passed-through camera now."""
        if self.gop.at_keyframe:  # the camera's IDR is the latest picture: start on it
            track.bridged, track.waiting_keyframe = False, True
            track.deliver_packet(packetize_h264(self.gop.packets[0]))
        elif not self.gop.usable:
            self.unmet += 1  # no IDR since the source opened (a cold source)
        elif not track.bridged or track.waiting_keyframe:
            track.bridged, track.waiting_keyframe = True, True
            task = asyncio.ensure_future(self._join_now(tracks))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _join_now(self, tracks: Iterable[BridgeViewer]) -> None:
        """The IDR for the viewers just bridged, at once (not at the camera's next frame)."""
        async with self._lock:
            if any(t.bridged and t.waiting_keyframe for t in list(tracks)):
                await self._step(tracks, holding=False, keyframe=True)

    async def packet(
        self, packet: av.Packet, tracks: Iterable[BridgeViewer], *, holding: bool
    ) -> None:
        """Every camera access unit, after the fan-out delivered it to its own viewers
        (a bridged viewer switches at the camera's IDR there)."""
        self.gop.add(packet)
        if holding or packet.is_keyframe or any(t.bridged for t in list(tracks)):
            async with self._lock:
                await self._step(tracks, holding=holding)

    async def picture(self, tracks: Iterable[BridgeViewer]) -> av.VideoFrame | None:
        """The camera's current picture (decoding the GOP so far); None before an IDR."""
        if not self.gop.usable:
            return None
        async with self._lock:
            await self._step(tracks, holding=True)
        return self.bridge.latest if self.bridge is not None else None

    async def _step(
        self, tracks: Iterable[BridgeViewer], *, holding: bool, keyframe: bool = False
    ) -> None:
        viewers = list(tracks)
        bridged = any(t.bridged for t in viewers)
        if not bridged and not holding:
            self.bridge = None  # nobody bridged, no press: no decoding either
            return
        if self.bridge is None:
            w, h, fps = self._size()
            self.bridge = KeyframeBridge(w, h, fps, bitrate=self._bitrate(), preset=self.preset)
        bridge = self.bridge
        if not bridged:
            bridge.end_encoding()
        loop = asyncio.get_running_loop()
        encoded = await loop.run_in_executor(
            None, functools.partial(bridge.step, self.gop, encode=bridged, keyframe=keyframe)
        )
        if keyframe and encoded:
            self.joins += 1
        for e in encoded:
            self.packets_out += 1
            for t in viewers:
                t.deliver_packet(e, bridged=True)

    def reset(self, tracks: Iterable[BridgeViewer]) -> None:
        """The stream changed (reopened, the slate): nothing kept decodes any more."""
        self.gop.clear()
        self.bridge = None
        for t in tracks:
            t.bridged = False
