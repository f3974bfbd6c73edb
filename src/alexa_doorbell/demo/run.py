"""``alexa-doorbell demo``'s run: a throwaway local cloud, the story, its summary."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import tempfile
from pathlib import Path

from rich.console import Console

from alexa_doorbell.config import Settings
from alexa_doorbell.demo.story import Demo

DEFAULT_OUT_DIR = Path("demo-output")


def _demo_settings(settings: Settings, keep_running: bool) -> Settings:
    data_dir = Path(tempfile.mkdtemp(prefix="alexa-doorbell-demo-"))
    local = settings.local.model_copy()
    if not keep_running:  # free ports, so a demo never collides with a running cloud
        local.port = 0
        local.tls_port = 0
    # Everything is on this machine: no STUN or TURN server, whatever the user set for a
    # real deployment, so the demo sends nothing beyond it.
    from alexa_doorbell.demo.talk import mode_camera_configs

    # The first camera announces a person too (the person-at-the-door step).
    first, *others = settings.cameras or [settings.camera()]
    if "person" not in first.detection:
        first = first.model_copy(update={"detection": [*first.detection, "person"]})
    return settings.model_copy(
        update={
            "cloud": "local",
            "data_dir": data_dir,
            # The talk-modes step's full, half and no-talk cameras, after the user's own.
            "cameras": [first, *others, *mode_camera_configs(data_dir)],
            "store_url": "",
            "local": local,
            "stun_urls": [],
            "use_turn": False,
        }
    )


def run_demo(
    settings: Settings,
    *,
    json_output: bool = False,
    keep_running: bool = False,
    source: str = "testsrc",
    out_dir: Path | None = None,
) -> int:
    """Play the whole story; exit status 0 only when every step passed.

    Logging is the command's to set up (``cli.configure_logging``): warnings on stderr.
    """
    console = Console(stderr=json_output)
    settings = _demo_settings(settings, keep_running)
    out = (out_dir or DEFAULT_OUT_DIR).resolve()
    demo = Demo(settings, out, source=source, console=console, json_output=json_output)
    if not json_output:
        console.rule("[bold]alexa-doorbell demo[/bold]: a camera on Alexa, on this machine")

    async def main() -> bool:
        try:
            ok = await demo.run()
            if keep_running and demo.cloud is not None:
                await _keep_running(demo, console)
            return ok
        finally:
            await demo.close()

    try:
        ok = asyncio.run(main())
    except KeyboardInterrupt:
        ok = False
    summary = demo.summary()
    if json_output:
        print(json.dumps(summary, indent=2, default=str))
    else:
        console.rule("[green]every step passed[/green]" if ok else "[red]a step failed[/red]")
        if summary["snapshot"]:
            console.print(f"What the Echo saw:   {summary['snapshot']}")
        if summary["talkback_wav"]:
            console.print(f"What the camera heard: {summary['talkback_wav']}")
    shutil.rmtree(settings.data_dir, ignore_errors=True)  # a fresh, throwaway cloud each run
    return 0 if ok else 1


async def _keep_running(demo: Demo, console: Console) -> None:
    """Bring the camera back and serve the dashboard until Ctrl-C."""
    await demo._spawn_camera()
    local = demo.settings.local
    console.print(
        f"Local cloud: {local.url} (WSS {local.wss_url}); data in {demo.settings.data_dir}"
    )
    console.print("Point AWS tools at it with:")
    for k, v in demo.settings.aws_env().items():
        console.print(f"  export {k}={v}")
    from alexa_doorbell.web.app import start_dashboard

    try:
        server = await start_dashboard(demo.settings, port=8760, store=demo.store)
    except OSError:  # 8760 taken (another dashboard?): any free port will do
        server = await start_dashboard(demo.settings, port=0, store=demo.store)
    console.print(f"Dashboard: {server.url}/")
    console.print("Running until Ctrl-C.")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()
