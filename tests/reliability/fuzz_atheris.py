"""Coverage-guided fuzzing (atheris/libFuzzer) of the three parsers that read hostile input.

    python tests/reliability/fuzz_atheris.py sdp|signaling|directive -runs=20000

Each target may refuse its input only with its own exception type; anything
else is a crash, which libFuzzer reports with the input and a non-zero exit.
"""

from __future__ import annotations

import contextlib
import json
import sys

import atheris

with atheris.instrument_imports():
    from alexa_doorbell.alexa.directive import Directive
    from alexa_doorbell.alexa.errors import InvalidDirective
    from alexa_doorbell.camera.sdp import OfferError, normalize_offer, summarize
    from alexa_doorbell.kvs.messages import (
        ClientMessage,
        MessageError,
        ServerMessage,
        decode_payload,
        decode_sdp,
    )


def fuzz_sdp(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    with contextlib.suppress(OfferError):
        summarize(normalize_offer(text).sdp)


def fuzz_signaling(data: bytes) -> None:
    for parse in (ServerMessage.parse, ClientMessage.parse):
        with contextlib.suppress(MessageError):
            parse(data)
    text = data.decode("latin-1")
    for decode in (decode_payload, lambda p: decode_sdp(p, "offer")):
        with contextlib.suppress(MessageError):
            decode(text)


def fuzz_directive(data: bytes) -> None:
    try:
        event = json.loads(data)
    except (ValueError, RecursionError):
        return
    with contextlib.suppress(InvalidDirective):
        Directive.parse(event)


TARGETS = {"sdp": fuzz_sdp, "signaling": fuzz_signaling, "directive": fuzz_directive}

if __name__ == "__main__":
    target = TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()
