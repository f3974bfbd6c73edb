"""``alexa-doorbell cloud`` as a process: it prints where it is, and AWS tools can use that."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3


def test_cloud_command_prints_env_that_boto3_uses(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "ALEXA_DOORBELL_DATA_DIR": str(tmp_path),
        "ALEXA_DOORBELL_LOCAL__PORT": "0",
        "ALEXA_DOORBELL_LOCAL__TLS_PORT": "0",
        "ALEXA_DOORBELL_CONFIG": os.devnull,  # no config file
        "PYTHONFAULTHANDLER": "1",  # a hang below shows where it is (SIGABRT dumps stacks)
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "alexa_doorbell.cli", "cloud"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # As from a terminal: Ctrl-C's default action. A child inherits an ignored
        # SIGINT, and Python then installs no KeyboardInterrupt for it: with one ignored
        # in this process (left so by something earlier in a full run) the command never
        # saw the Ctrl-C below (its stacks showed the loop idle, the signal gone).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 20
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("Ctrl-C"):
                break
        text = "".join(lines)
        # Read on: a command whose output nobody reads blocks on a full pipe and cannot
        # exit on Ctrl-C (what failed here in full runs).
        drain = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
        drain.start()
        exports = dict(re.findall(r"export (AWS_[A-Z_]+)=(\S+)", text))
        assert set(exports) == {
            "AWS_ENDPOINT_URL",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_DEFAULT_REGION",
        }, text
        assert re.search(r"wss://127\.0\.0\.1:\d+", text)
        assert "channel front-door: arn:aws:kinesisvideo:" in text
        # boto3 configured only through the printed environment variables
        client_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        os_environ = dict(os.environ)
        try:
            os.environ.clear()
            os.environ.update({**client_env, **exports})
            kv = boto3.session.Session().client("kinesisvideo")
            names = [c["ChannelName"] for c in kv.list_signaling_channels()["ChannelInfoList"]]
            kv.close()  # its keep-alive connection is not the server's to wait for
        finally:
            os.environ.clear()
            os.environ.update(os_environ)
        assert names == ["front-door"]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)  # a loaded machine: a clean exit may take a while, a hang fails
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            time.sleep(0.5)  # the drain reads the stacks
    assert proc.returncode == 0, "".join(lines)[-3000:]
