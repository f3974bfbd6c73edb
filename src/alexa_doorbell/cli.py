"""The ``alexa-doorbell`` command.

Each sub-command imports its implementation lazily, so ``alexa-doorbell --help``
stays fast and one broken part cannot take the others down. Whatever the command,
a configuration mistake is one line on stderr and exit status 2.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup

from alexa_doorbell.config import ConfigError, load_settings


class _Commands(TyperGroup):
    """Runs every command (sub-groups included) with ConfigError as one line, exit 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            typer.echo(f"alexa-doorbell: {exc}", err=True)
            raise typer.Exit(2) from None


app = typer.Typer(
    cls=_Commands,
    help="Put a camera or video doorbell on Amazon Alexa (Echo Show live view, two-way talk, "
    "doorbell announcements). Runs on a local cloud by default: no account needed.",
    no_args_is_help=True,
    add_completion=False,
)
skill_app = typer.Typer(help="The Alexa skill (the Lambda function), run locally.")
tokens_app = typer.Typer(help="Linked users and their Login with Amazon tokens.")
app.add_typer(skill_app, name="skill")
app.add_typer(tokens_app, name="tokens")


_JOURNAL_PRIORITY = {"CRITICAL": 2, "ERROR": 3, "WARNING": 4, "INFO": 6, "DEBUG": 7}


class _JournalFormatter(logging.Formatter):
    """``<priority>logger: message``: the journal keeps the time, and shows errors as such."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"{record.name}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        prefix = f"<{_JOURNAL_PRIORITY.get(record.levelname, 6)}>"
        return "\n".join(prefix + line for line in text.splitlines())


def configure_logging(verbose: bool) -> None:
    """Where log records go. The command sets it here, and nothing else does.

    Library modules only make loggers (``logging.getLogger(__name__)``). The two Lambda
    handler modules (the skill's and the notifier's) only raise the ``alexa_doorbell``
    logger to INFO when they run in Lambda, whose runtime owns the root logger and
    sends it to CloudWatch.

    ``verbose`` (a service that runs for days: the camera agent): INFO and up through
    Rich, aiortc's and aioice's own INFO held back. Otherwise (the demo, which prints
    its own story): warnings and errors on stderr.
    """
    if verbose:
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(show_path=False)
        if os.environ.get("JOURNAL_STREAM"):  # under systemd: one plain line per record
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(_JournalFormatter())
        logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[handler])
        logging.getLogger("aioice").setLevel(logging.WARNING)
        logging.getLogger("aiortc").setLevel(logging.WARNING)
    else:
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)


@app.command()
def demo(
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    keep_running: Annotated[
        bool, typer.Option(help="Leave the local cloud and camera up until Ctrl-C.")
    ] = False,
    source: Annotated[
        str, typer.Option(help="Camera source (testsrc, file, rtsp://, webcam)")
    ] = "testsrc",
    out_dir: Annotated[
        Path | None, typer.Option(help="Where to save the snapshot and WAV.")
    ] = None,
) -> None:
    """Run the whole system on this machine, watched by a simulated Echo Show."""
    from alexa_doorbell.demo import run_demo

    settings = load_settings()
    configure_logging(verbose=False)
    raise typer.Exit(
        run_demo(
            settings,
            json_output=json_output,
            keep_running=keep_running,
            source=source,
            out_dir=out_dir,
        )
    )


@app.command()
def cloud(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port (TLS/WSS port is port+1).")] = None,
) -> None:
    """Run the local cloud: KVS signaling, Login with Amazon and the event gateway."""
    from alexa_doorbell.cloud.server import run_cloud

    settings = load_settings()
    if host:
        settings.local.host = host
    if port:
        settings.local.port = port
        settings.local.tls_port = port + 1
    try:
        run_cloud(settings)
    except OSError as exc:  # a port in use: the message says what to do
        typer.echo(f"alexa-doorbell cloud: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def camera(
    endpoint_id: Annotated[
        list[str] | None,
        typer.Option(help="Serve only this camera (repeat for several; default: every one)."),
    ] = None,
    source: Annotated[
        str | None, typer.Option(help="Override the source of the one camera served.")
    ] = None,
) -> None:
    """Run the camera agent: the KVS MASTER of every configured camera, in one process."""
    from alexa_doorbell.camera.media import MediaSourceError
    from alexa_doorbell.camera.service import run_agent
    from alexa_doorbell.commands.inputs import attach_inputs
    from alexa_doorbell.preflight import require_camera_side

    settings = load_settings()
    require_camera_side(settings)
    configure_logging(verbose=True)
    try:
        run_agent(settings, endpoint_id=endpoint_id or None, source=source, attach=attach_inputs)
    except (MediaSourceError, KeyError) as exc:  # a wrong source or endpoint id: say which
        message = exc.args[0] if isinstance(exc, KeyError) else str(exc)
        typer.echo(f"alexa-doorbell camera: {message}", err=True)
        raise typer.Exit(2) from None


@skill_app.command("invoke")
def skill_invoke(
    file: Annotated[str, typer.Argument(help="Directive JSON file, or - for stdin.")],
) -> None:
    """Run one directive through the skill and print the response JSON."""
    from alexa_doorbell.commands.skill import invoke_cli

    raise typer.Exit(invoke_cli(load_settings(), file))


@app.command()
def press(
    endpoint_id: Annotated[str | None, typer.Argument(help="Doorbell endpoint id.")] = None,
    cause: Annotated[
        str, typer.Option(help="DoorbellPress cause: PHYSICAL_INTERACTION, APP_INTERACTION...")
    ] = "PHYSICAL_INTERACTION",
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Ring the doorbell: send DoorbellPress to Alexa."""
    from alexa_doorbell.commands.press import press_cli
    from alexa_doorbell.preflight import require_camera_side

    settings = load_settings()
    require_camera_side(settings, "press")
    raise typer.Exit(press_cli(settings, endpoint_id, cause=cause, json_output=json_output))


@tokens_app.command("status")
def tokens_status(
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show each linked user's token health (never the tokens)."""
    from alexa_doorbell.commands.press import tokens_status_cli
    from alexa_doorbell.preflight import require_camera_side

    settings = load_settings()
    require_camera_side(settings, "tokens status")
    raise typer.Exit(tokens_status_cli(settings, json_output=json_output))


@app.command()
def dashboard(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8760,
) -> None:
    """Serve the dashboard: live view, doorbell button, system status."""
    from alexa_doorbell.web.app import run_dashboard
    from alexa_doorbell.web.auth import LoginNotConfigured

    try:
        run_dashboard(load_settings(), host=host, port=port)
    except (LoginNotConfigured, OSError) as exc:  # no password beyond loopback, a port in use
        typer.echo(f"alexa-doorbell dashboard: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def doctor() -> None:
    """Check a real configuration without changing anything."""
    from alexa_doorbell.doctor import run_doctor

    raise typer.Exit(run_doctor(load_settings()))


@app.command("config")
def show_config(
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show the settings in effect: every source merged, where each came from, no secret."""
    import json

    from alexa_doorbell.config_show import render, report

    result = report(load_settings())
    typer.echo(json.dumps(result.as_dict(), indent=2) if json_output else render(result))


@app.command()
def link(
    user_id: Annotated[
        str | None,
        typer.Argument(help="The user's Amazon id (default: amzn1.account.LOCALUSER)."),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Link a user to the skill on the local cloud, as the Alexa app does (for press,
    tokens status and the dashboard). Prints no token."""
    import json

    from alexa_doorbell.cloud.link import DEFAULT_USER, LinkError, link_user, render
    from alexa_doorbell.commands.skill import build_skill

    settings = load_settings()
    try:
        linked = link_user(settings, user_id or DEFAULT_USER, lambda: build_skill(settings))
    except LinkError as exc:
        typer.echo(f"alexa-doorbell link: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    store = settings.store_location
    if json_output:
        out = {"ok": True, "user_id": linked.user_id, "cloud": linked.cloud, "store": store}
        out |= {"endpoints": linked.endpoints, "doorbell": linked.doorbell}
        typer.echo(json.dumps(out))
    else:
        typer.echo(render(linked, store))


@app.command("package-lambda")
def package_lambda(
    output: Annotated[Path, typer.Option(help="Zip file to write.")] = Path("dist/lambda.zip"),
) -> None:
    """Build the Lambda zip (skill + notifier; boto3 comes from the runtime)."""
    from alexa_doorbell.packaging import build_lambda_zip

    load_settings()  # the zip holds no settings, but a broken file is said here too
    path = build_lambda_zip(output)
    typer.echo(f"{path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    app()
