"""The service recipes: the systemd unit (``systemd-analyze verify`` where it exists) and
the container (no builder here: its instructions, paths and compose file are checked)."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "deploy/systemd/alexa-doorbell-camera.service"
CONTAINER = ROOT / "deploy/container"
INSTALLED_BIN = "/home/doorbell/alexa-doorbell/.venv/bin/alexa-doorbell"
DOCKERFILE_INSTRUCTIONS = {
    "FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
    "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
}  # fmt: skip


def _unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser


def test_the_unit_is_what_the_issue_asks() -> None:
    unit = _unit()
    s, u = unit["Service"], unit["Unit"]
    assert s["Type"] == "notify" and s["Restart"] == "on-failure"
    assert "network-online.target" in u["After"] and "network-online.target" in u["Wants"]
    assert s["User"] == "doorbell" and s.get("User") != "root"
    assert s["StandardOutput"] == "journal" and s["RestartPreventExitStatus"] == "2"
    assert s["ExecStart"].split() == [INSTALLED_BIN, "camera"]
    assert unit["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    # verify checks that ExecStart exists: point it at this checkout's command.
    here = Path(sys.executable).with_name("alexa-doorbell")
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace(INSTALLED_BIN, str(here)))
    run = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0 and not run.stderr.strip(), run.stderr
    # ...and it does see mistakes: the check can fail.
    bad = tmp_path / "bad-alexa-doorbell.service"
    bad.write_text(unit.read_text().replace("Type=notify", "Type=notifyy"))
    run = subprocess.run(["systemd-analyze", "verify", str(bad)], capture_output=True, text=True)
    assert "notifyy" in run.stderr


def _instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_the_containerfile_parses_and_its_paths_exist() -> None:
    steps = _instructions((CONTAINER / "Containerfile").read_text())
    assert steps[0][0] == "FROM"
    assert {word for word, _ in steps} <= DOCKERFILE_INSTRUCTIONS
    for word, rest in steps:
        if word == "COPY":
            *sources, _dest = rest.split()
            for src in sources:
                assert (ROOT / src).exists(), src
    users = [rest for word, rest in steps if word == "USER"]
    assert users and users[-1] not in ("root", "0")  # unprivileged
    entry = next(rest for word, rest in steps if word == "ENTRYPOINT")
    cmd = next(rest for word, rest in steps if word == "CMD")
    assert yaml.safe_load(entry) == ["alexa-doorbell"] and yaml.safe_load(cmd) == ["camera"]
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'alexa-doorbell = "alexa_doorbell.cli:app"' in pyproject
    env = " ".join(rest for word, rest in steps if word == "ENV")
    assert "ALEXA_DOORBELL_DATA_DIR=/data" in env and "ALEXA_DOORBELL_CONFIG=" in env


def test_the_compose_file_builds_that_containerfile_on_the_host_network() -> None:
    compose = yaml.safe_load((CONTAINER / "compose.yaml").read_text())
    service = compose["services"]["camera"]
    build = service["build"]
    assert (CONTAINER / build["context"] / build["dockerfile"]).resolve() == (
        CONTAINER / "Containerfile"
    ).resolve()
    assert service["network_mode"] == "host"  # ICE host candidates on the LAN
    assert service["restart"] == "unless-stopped"
    assert any(v.endswith(":/data") for v in service["volumes"])
    text = (CONTAINER / "compose.yaml").read_text().lower()
    assert "secret_access_key:" not in text and "password:" not in text
