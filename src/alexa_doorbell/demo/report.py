"""How the demo prints what it saw: the talk-modes table and the figures' forms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from alexa_doorbell.demo.steps import StepResult


def print_result(console: Console, r: StepResult, camera_log: Path) -> None:
    """One step as the user reads it: a tick and its figures, or what it expected and saw."""
    if r.ok:
        console.print(f"[green]✔[/green] {r.title} [dim]({r.ms:.0f} ms)[/dim] {r.detail}")
    else:
        console.print(f"[red]✘ {r.title}[/red]")
        console.print(f"    expected: {r.expected}")
        console.print(f"    saw:      {r.seen}")
        if camera_log.exists():
            console.print(f"    camera log: {camera_log}")
    if r.name == "talk_modes" and r.figures.get("sessions"):
        console.print(talk_table(r.figures["sessions"]))


def talk_table(rows: list[dict[str, Any]]) -> Any:
    """The reference table next to what the simulated Echo showed and each side heard."""
    from rich.table import Table

    table = Table(pad_edge=False, box=None, title_justify="left")
    table.add_column("camera")
    table.add_column("utterance")
    table.add_column("an Echo Show shows (reference)", overflow="fold")
    table.add_column("simulated Echo", overflow="fold")
    table.add_column("door heard", no_wrap=True)
    table.add_column("Echo heard", no_wrap=True)
    utterances = {"show": '"show me"', "talk": '"talk to"'}
    for r in rows:
        shown = r.get("echo_shows")
        same = shown == r["reference"]
        table.add_row(
            r["camera"],
            utterances[r["utterance"]],
            r["reference"],
            "[green]✔ the same[/green]" if same else f"[red]✘ {shown}[/red]",
            f"{r.get('door_heard_s', 0):.1f} s RMS {r.get('door_heard_rms', 0):.3f}",
            f"{r.get('echo_heard_s', 0):.1f} s RMS {r.get('echo_heard_rms', 0):.3f}",
        )
    return table


def rounded(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


def fmt_ms(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.0f} ms"
