"""The skill on this machine: built from ``Settings``; ``alexa-doorbell skill invoke``."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

from alexa_doorbell.config import Settings
from alexa_doorbell.skill.app import Skill
from alexa_doorbell.skill.handler import build
from alexa_doorbell.store.base import Store


def build_skill(settings: Settings, store: Store | None = None) -> Skill:
    """The skill wired to the configured cloud (local emulators or AWS) and store.

    The cameras in ``settings.cameras`` are added to the store's device catalog.
    """
    return build(settings.lambda_config(), store, settings.boto_session())


def cloud_is_up(settings: Settings) -> bool:
    """Whether something answers HTTP where the local cloud should be."""
    try:
        with urllib.request.urlopen(settings.local.url + "/_local/status", timeout=1.0):
            return True
    except urllib.error.HTTPError:
        return True  # something answers HTTP there
    except OSError:
        return False


def invoke_cli(settings: Settings, file: str) -> int:
    """Run one directive (a file, or ``-`` for stdin) and print the response JSON.

    Exit 0 for any reply, ErrorResponses included (they are valid replies);
    2 when the input is not JSON or the skill cannot be set up.
    """
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text("utf-8")
        event = json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        print(f"cannot read a directive from {file}: {exc}", file=sys.stderr)
        return 2
    cloud = None
    try:
        if settings.is_local and not cloud_is_up(settings):
            from alexa_doorbell.cloud.server import start_cloud_thread

            cloud = start_cloud_thread(settings)
        try:
            skill = build_skill(settings)
        except Exception as exc:
            print(f"cannot set up the skill: {exc}", file=sys.stderr)
            return 2
        reply = skill.handle(event)
        skill.store.close()
    finally:
        if cloud is not None:
            cloud.stop()
    print(json.dumps(reply, indent=2))
    return 0
