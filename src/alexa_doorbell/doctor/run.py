"""``alexa-doorbell doctor``: every check in order, printed with its fix."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TextIO

from alexa_doorbell.doctor.alexa import AlexaChecks
from alexa_doorbell.doctor.aws import AwsChecks
from alexa_doorbell.doctor.base import FAIL, WARN, Check
from alexa_doorbell.doctor.cameras import CameraChecks
from alexa_doorbell.doctor.media import MediaChecks

if TYPE_CHECKING:
    from alexa_doorbell.config import Settings


class Doctor(AwsChecks, CameraChecks, MediaChecks, AlexaChecks):
    """Every check, in the order a fix upstream makes the ones after it meaningful."""

    @property
    def camera_machine(self) -> bool:
        """AWS settings with a notifier and no table: the camera at home, which holds no
        LWA secret and cannot read the table, so its Alexa side is asked of the notifier."""
        return not self.s.is_local and not self.s.store_url and bool(self.s.notifier_function)

    def checks(self) -> Iterator[Check]:
        yield self.region()
        yield self.credentials()
        yield self.clock()
        for cam in self.s.cameras:
            yield self.channel(cam)
            yield self.camera_online(cam)
        yield from self.media_path()
        if self.camera_machine:
            yield self.notifier()
            return
        yield self.lwa_client()
        yield from self.linked_users()
        yield self.skill()


def run_doctor(
    settings: Settings,
    *,
    now: Callable[[], float] = time.time,
    out: TextIO | None = None,
) -> int:
    """Print each check with its fix; 0 when nothing failed, 1 otherwise."""
    out = out or sys.stdout
    doctor = Doctor(settings, now=now)
    where = f"local cloud {settings.local.url}" if settings.is_local else f"AWS {settings.region}"
    print(f"alexa-doorbell doctor: {where}, store {_redact_url(settings.store_location)}", file=out)
    failed = 0
    try:
        for check in doctor.checks():
            failed += check.status == FAIL
            print(f"  {check.status:<4}  {check.name:<24}  {check.detail}", file=out)
            if check.fix and check.status in (FAIL, WARN):
                print(f"        fix: {check.fix}", file=out)
            out.flush()
    finally:
        doctor.close()
    print("all good" if not failed else f"{failed} check(s) failed", file=out)
    return 1 if failed else 0


def _redact_url(url: str) -> str:
    # Store URLs carry no secrets today; keep it that way in the output regardless.
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.split('@')[-1]}"
