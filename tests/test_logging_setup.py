"""Only the command configures logging (``cli.configure_logging``): importing any module
of the package leaves the root logger's handlers and level as they were, and gives no
``alexa_doorbell`` logger a handler or a level. In Lambda (``AWS_LAMBDA_FUNCTION_NAME``
set), whose runtime owns the root logger, the handler modules raise ``alexa_doorbell``
to INFO and nothing more. No library function sets logging up either."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "alexa_doorbell"
# Calls that set up logging rather than log.
SETUP_CALLS = {"basicConfig", "dictConfig", "fileConfig", "addHandler", "setLevel", "disable"}
# doctor's checks print what they saw, so it holds a library's warnings back while one runs
# (and puts the level back): the command's own business, not a module's set-up.
ALLOWED = {"cli.py": "the command", "doctor/alexa.py": "_quiet, around a check"}

# Runs in a fresh interpreter: pytest's own capture handlers sit on this one's root logger,
# and modules imported by earlier tests would not run their import-time code again.
IMPORT_ALL = """
import importlib, json, logging, pkgutil, sys
import alexa_doorbell

root = logging.getLogger()
before = {"level": root.level, "handlers": [repr(h) for h in root.handlers]}

def broken(name):
    raise SystemExit(f"cannot import {name}: {sys.exc_info()[1]!r}")

names = []
for info in pkgutil.walk_packages(alexa_doorbell.__path__, "alexa_doorbell.", onerror=broken):
    importlib.import_module(info.name)
    names.append(info.name)
after = {"level": root.level, "handlers": [repr(h) for h in root.handlers]}
ours = {
    name: {"level": logger.level, "handlers": [repr(h) for h in logger.handlers]}
    for name, logger in logging.root.manager.loggerDict.items()
    if isinstance(logger, logging.Logger)
    and (name == "alexa_doorbell" or name.startswith("alexa_doorbell."))
    and (logger.level or logger.handlers)
}
print(json.dumps({"before": before, "after": after, "ours": ours, "modules": names}))
"""


def _import_everything(**env: str) -> dict:
    environ = {k: v for k, v in os.environ.items() if k != "AWS_LAMBDA_FUNCTION_NAME"}
    run = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL],
        env={**environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


@pytest.mark.parametrize("in_lambda", [False, True], ids=["command", "lambda"])
def test_importing_any_module_configures_no_logging(in_lambda: bool) -> None:
    env = {"AWS_LAMBDA_FUNCTION_NAME": "alexa-doorbell-skill"} if in_lambda else {}
    seen = _import_everything(**env)
    # Every module was imported: the walk did not stop early.
    assert {"alexa_doorbell.cli", "alexa_doorbell.camera.agent", "alexa_doorbell.demo"} <= set(
        seen["modules"]
    )
    assert "alexa_doorbell.skill.handler" in seen["modules"]
    assert seen["after"] == seen["before"]
    assert seen["before"]["handlers"] == []
    if in_lambda:
        assert seen["ours"] == {"alexa_doorbell": {"level": 20, "handlers": []}}  # INFO
    else:
        assert seen["ours"] == {}


def _is_lambda_handler_module(tree: ast.Module) -> bool:
    return any(
        isinstance(node, ast.FunctionDef) and node.name == "lambda_handler" for node in tree.body
    )


def test_only_the_command_and_the_lambda_handlers_set_logging_up() -> None:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        tree = ast.parse(path.read_bytes())
        if rel in ALLOWED or _is_lambda_handler_module(tree):
            continue
        found += [
            f"{rel}:{node.lineno} {node.func.attr}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in SETUP_CALLS
        ]
    assert found == [], "set logging up in cli.configure_logging instead"
