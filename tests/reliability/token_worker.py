"""A pre-loaded process that forks workers refreshing tokens or accepting grants until killed.

Forking from a warm parent lets the token test run hundreds of kill trials in
seconds while each worker stays a real process with its own SQLite connection
and HTTP pool. Protocol (stdin → stdout, one line each):

    go refresh|grant   →  ready <pid>        the child then loops until SIGKILLed
"""

from __future__ import annotations

import json
import os
import signal
import sys
import urllib.request

from alexa_doorbell.commands.skill import build_skill
from alexa_doorbell.config import CameraConfig, LocalCloudConfig, Settings
from alexa_doorbell.notifier.state_report import EventSender
from tests import directives as D


def _link(settings: Settings, user_id: str) -> dict[str, str]:
    req = urllib.request.Request(
        settings.local.url + "/_local/lwa/link",
        data=json.dumps({"user_id": user_id}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def refresh_forever(settings: Settings, user_id: str) -> None:
    """The notifier's refresh path: a 401 from the gateway forces a refresh every time."""
    notifier = EventSender.from_config(settings.lambda_config())
    print(f"ready {os.getpid()}", flush=True)
    while True:
        tokens = notifier.store.get_tokens(user_id)
        notifier.tokens_for(user_id, stale=tokens.access_token)


def grant_forever(settings: Settings, user_id: str) -> None:
    """AcceptGrant after AcceptGrant (the user relinking), each with a fresh code."""
    skill = build_skill(settings)
    print(f"ready {os.getpid()}", flush=True)
    while True:
        who = _link(settings, user_id)
        reply = skill.handle(D.accept_grant(who["code"], who["access_token"]))
        assert reply["event"]["header"]["name"] == "AcceptGrant.Response", reply


def main() -> None:
    spec = json.loads(sys.argv[1])
    s = spec["settings"]
    settings = Settings(
        cloud="local",
        data_dir=s["data_dir"],
        local=LocalCloudConfig(**s["local"]),
        cameras=[CameraConfig(**c) for c in s["cameras"]],
    )
    # Warm what every child needs (botocore's data, urllib3) once, before forking.
    settings.boto_session().client("kinesisvideo", endpoint_url=settings.endpoint_url())
    import urllib3  # noqa: F401

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # killed children are reaped by the kernel
    for line in sys.stdin:
        mode = line.split()[1] if line.startswith("go ") else ""
        if mode not in ("refresh", "grant"):
            continue
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            try:
                (refresh_forever if mode == "refresh" else grant_forever)(settings, spec["user_id"])
            finally:
                os._exit(1)


if __name__ == "__main__":
    main()
