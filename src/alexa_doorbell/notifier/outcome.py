"""What happened to one event for one user: the notifier's one answer type."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

DOORBELL_PRESS = "DoorbellPress"
CHANGE_REPORT = "ChangeReport"
ADD_OR_UPDATE_REPORT = "AddOrUpdateReport"
DELETE_REPORT = "DeleteReport"
OBJECT_DETECTION = "ObjectDetection"

Build = Callable[[str], dict[str, Any]]  # access token -> the event


@dataclass(frozen=True)
class Outcome:
    """What happened to one event for one user."""

    name: str  # DoorbellPress, ChangeReport, ObjectDetection, AddOrUpdateReport, DeleteReport
    endpoint_id: str
    # "202", "debounced", "unchanged", "cooldown", "turned off", "not linked", "429 ..."
    status: str
    ok: bool
    user_id: str = ""
    detail: str = ""
    relink_needed: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        who = f" for {self.user_id}" if self.user_id else ""
        text = f"{self.name} {self.endpoint_id}{who}: {self.status}"
        return f"{text} ({self.detail})" if self.detail else text


def summary(outcomes: Sequence[Outcome]) -> str:
    """The notifier's answer in one word or two: the sent status if any, else the first."""
    if not outcomes:
        return "no reply"
    sent = [o.status for o in outcomes if o.ok]
    return ", ".join(dict.fromkeys(sent or [o.status for o in outcomes]))
