"""Run one command in N processes that start at the same instant.

Started as separate programs, twenty ``alexa-doorbell press`` processes spend
seconds importing on a small machine and arrive one after another; a race
between them is then a race in name only. Here a warm parent (everything the
command imports already loaded) forks N children that each wait on one pipe;
when all exist the parent writes N bytes and they run at once, each a real
process with its own store connection, HTTP pools and locks. Each child's
stdout and stderr go to files; the parent prints one JSON list, one object per
child: ``{"returncode", "stdout", "stderr"}``.

    python tests/helpers/at_once.py 20 cli press front-door --json
    python tests/helpers/at_once.py 20 lambda '{"action": "press"}'

``cli``: the installed ``alexa-doorbell`` console script's entry point with the
given arguments. ``lambda``: the notifier Lambda's ``lambda_handler`` on the
JSON request, its reply printed as JSON (each child builds its own notifier
from ``ALEXA_DOORBELL_*``, as a fresh container does).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path


def _cli(args: list[str]) -> Callable[[], None]:
    (script,) = entry_points(group="console_scripts", name="alexa-doorbell")
    entry = script.load()
    # What the press command imports lazily, loaded before the fork.
    import urllib3  # noqa: F401

    import alexa_doorbell.amazon.lwa
    import alexa_doorbell.commands.press
    import alexa_doorbell.skill.app
    import alexa_doorbell.store.sqlite  # noqa: F401

    def run() -> None:
        sys.argv = ["alexa-doorbell", *args]
        entry()

    return run


def _lambda(args: list[str]) -> Callable[[], None]:
    import urllib3  # noqa: F401

    import alexa_doorbell.amazon.lwa
    import alexa_doorbell.skill.app
    import alexa_doorbell.store.sqlite  # noqa: F401
    from alexa_doorbell.notifier import lambda_handler as notify

    request = json.loads(args[0])

    def run() -> None:
        print(json.dumps(notify.lambda_handler(request)))

    return run


def _child(run: Callable[[], None], start: int, out: Path, err: Path) -> None:
    """In the forked child: wait for the start signal, run, exit with the command's status."""
    code = 1
    try:
        os.dup2(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 1)
        os.dup2(os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
        os.read(start, 1)
        run()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main() -> None:
    count, mode, args = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    run = {"cli": _cli, "lambda": _lambda}[mode](args)
    outdir = Path(tempfile.mkdtemp(prefix="at-once-"))
    start, go = os.pipe()
    pids = []
    for i in range(count):
        pid = os.fork()
        if pid == 0:
            os.close(go)
            _child(run, start, outdir / f"{i}.out", outdir / f"{i}.err")
        pids.append(pid)
    os.close(start)
    os.write(go, b"x" * count)  # every child is waiting: let them all go
    os.close(go)
    results = []
    for i, pid in enumerate(pids):
        _, status = os.waitpid(pid, 0)
        out, err = outdir / f"{i}.out", outdir / f"{i}.err"
        results.append(
            {
                "returncode": os.waitstatus_to_exitcode(status),
                "stdout": out.read_text(),
                "stderr": err.read_text(),
            }
        )
        out.unlink()
        err.unlink()
    outdir.rmdir()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
