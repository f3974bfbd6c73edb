"""What every check shares: a check's result, and the doctor's view of the settings."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.config import Config
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from alexa_doorbell.config import Settings
    from alexa_doorbell.store.base import Store

OK, WARN, FAIL, SKIP = "ok", "warn", "FAIL", "skip"
BOTO = Config(connect_timeout=3, read_timeout=8, retries={"max_attempts": 1})


@dataclass
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""


def error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "") or "Error"


class DoctorBase:
    """The settings, clients and store the checks use, and the fixes several of them give.

    ``_channels_ok``: which cameras' signaling channels passed, for the checks after them.
    """

    def __init__(self, settings: Settings, *, now: Callable[[], float] = time.time) -> None:
        self.s = settings
        self.now = now
        self._store: Store | None = None
        self._channels_ok: dict[str, bool] = {}

    def _client(self, service: str) -> Any:
        return self.s.boto_session().client(
            service, endpoint_url=self.s.endpoint_url(), config=BOTO
        )

    def _store_or_raise(self) -> Store:
        if self._store is None:
            from alexa_doorbell.store import open_store

            self._store = open_store(self.s.store_location)
        return self._store

    @property
    def _where(self) -> str:
        return "the local cloud" if self.s.is_local else f"AWS {self.s.region}"

    def _cloud_fix(self) -> str:
        if self.s.is_local:
            return (
                f"start the local cloud (`alexa-doorbell cloud`) or fix "
                f"ALEXA_DOORBELL_LOCAL__HOST/PORT (now {self.s.local.url})"
            )
        return "check the network and ALEXA_DOORBELL_REGION"

    def _store_fix(self) -> str:
        return (
            "set ALEXA_DOORBELL_STORE_URL to sqlite:///path or dynamodb://<StoreTableName "
            "output of the stack>, with read access for this user"
        )

    def _notifier_fix(self) -> str:
        return (
            "on the camera machine set notifier_function to the stack output "
            "NotifierFunctionArn, give its IAM user the CameraAgentPolicy (lambda:InvokeFunction "
            "on the notifier), then restart the agent"
        )

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
