"""The camera agent alone in a process, so its memory, descriptors and threads are its own.

Started by ``conftest.AgentProcess`` with a JSON spec as its argument; answers one
JSON line per command read on stdin: ``stats`` (resource figures and agent
counters) or ``stop``. Prints ``{"ready": true}`` once signaling is connected.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import sys
import threading
from typing import Any

from alexa_doorbell.camera.agent import CameraAgent, store_connectivity
from alexa_doorbell.config import CameraConfig, LocalCloudConfig, Settings
from alexa_doorbell.store import open_store


def resources() -> dict[str, Any]:
    gc.collect()
    status = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            status[key] = value.strip()
    return {
        "rss_mb": int(status["VmRSS"].split()[0]) / 1024,
        "fds": len(os.listdir("/proc/self/fd")),
        "threads": int(status["Threads"]),
        "tasks": len(asyncio.all_tasks()),
        "thread_names": sorted(t.name for t in threading.enumerate()),
    }


async def main(spec: dict[str, Any]) -> None:
    s = spec["settings"]
    settings = Settings(
        cloud="local",
        data_dir=s["data_dir"],
        local=LocalCloudConfig(**s["local"]),
        cameras=[CameraConfig(**c) for c in s["cameras"]],
        max_viewers=s["max_viewers"],
        ice_gather_timeout=s["ice_gather_timeout"],
    )
    options = spec.get("options", {})
    store = open_store(settings.store_location)
    agent = CameraAgent(
        settings,
        store=store,
        on_connectivity=store_connectivity(store),
        preset="ultrafast",
        disconnect_poll=options.get("disconnect_poll", 0.2),
    )
    await agent.start()
    await agent.wait_ready(20)
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[str] = asyncio.Queue()

    def read_stdin() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(commands.put_nowait, line.strip())
        loop.call_soon_threadsafe(commands.put_nowait, "stop")

    threading.Thread(target=read_stdin, daemon=True).start()
    print(json.dumps({"ready": True}), flush=True)
    try:
        while True:
            cmd = await commands.get()
            if cmd == "stop":
                break
            if cmd == "stats":
                reply = {**resources(), **agent.stats()}
                reply["answer_ms"] = [round(t * 1000, 1) for t in agent.answer_times[-1000:]]
                print(json.dumps(reply), flush=True)
    finally:
        await agent.stop()
        store.close()
    print(json.dumps({"stopped": True}), flush=True)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(main(json.loads(sys.argv[1])))
