"""SessionDisconnected reaches the camera: the skill records it, the agent polls the record."""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from alexa_doorbell.camera.session import ViewerSession
from alexa_doorbell.kvs.client_id import session_key
from alexa_doorbell.notifier.client import SessionSource

log = logging.getLogger("alexa_doorbell.camera.agent")


class Sessions(Protocol):
    endpoint_id: str
    sessions: dict[str, ViewerSession]

    async def close_session(self, peer_id: str, reason: str) -> None: ...


async def watch_disconnects(agent: Sessions, store: SessionSource, poll: float) -> None:
    """End Alexa sessions the skill recorded as DISCONNECTED."""
    while True:
        await asyncio.sleep(poll)
        starts = [s.started_wall for s in agent.sessions.values() if s.alexa_key]
        if not starts:
            continue
        # Rows since the oldest live Alexa session (60 s for clock skew between the
        # skill and the camera), not since the agent started: the poll's cost must not
        # grow with every session the agent ever served.
        since = min(starts) - 60
        try:
            rows = await asyncio.to_thread(store.list_sessions, agent.endpoint_id, since=since)
        except Exception as exc:
            log.warning("cannot read RTC sessions from the store: %s", exc)
            continue
        gone = {session_key(r.session_id) for r in rows if r.state == "DISCONNECTED"}
        for s in list(agent.sessions.values()):
            if s.alexa_key and s.alexa_key in gone:
                await agent.close_session(s.peer_id, "SessionDisconnected")
