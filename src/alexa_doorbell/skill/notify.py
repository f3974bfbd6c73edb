"""Deprecated: the notifier Lambda's handler is ``alexa_doorbell.notifier.lambda_handler``.

Stacks deployed before the notifier had its own package name
``alexa_doorbell.skill.notify.lambda_handler``; it keeps working (and says once
per container what to change) until the next release drops it. Redeploy
``deploy/template.yaml``, or set the function's handler to
``alexa_doorbell.notifier.lambda_handler.lambda_handler``.
"""

from __future__ import annotations

import logging
from typing import Any

from alexa_doorbell.notifier import lambda_handler as _notifier

log = logging.getLogger("alexa_doorbell.notify")

_warned = False


def lambda_handler(event: Any, context: Any = None) -> dict[str, Any]:
    global _warned
    if not _warned:
        _warned = True
        log.warning(
            "handler alexa_doorbell.skill.notify.lambda_handler is deprecated: redeploy the "
            "template or set the handler to alexa_doorbell.notifier.lambda_handler.lambda_handler"
        )
    return _notifier.lambda_handler(event, context)
