"""The Alexa side: the notifier Lambda, the LWA client, each linked user's tokens, the skill."""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from alexa_doorbell.doctor.base import BOTO, FAIL, OK, SKIP, WARN, Check, DoctorBase, error_code

# A refresh token that cannot exist: LWA checks the client first, so
# invalid_grant proves the client id/secret are right without any user's token.
PROBE_REFRESH_TOKEN = "Atzr|alexa-doorbell-doctor-probe"


class AlexaChecks(DoctorBase):
    """Checks of what reaches Alexa: the notifier, LWA, the users, the skill."""

    def notifier(self) -> Check:
        """The notifier Lambda answers this machine (what presses and heartbeats need)."""
        name = "notifier"
        function = self.s.notifier_function or ""
        try:
            lam = self.s.boto_session().client("lambda", config=BOTO)
            out = lam.invoke(FunctionName=function, Payload=json.dumps({"action": "status"}))
            reply = json.loads(out["Payload"].read() or b"{}")
        except ClientError as exc:
            return Check(
                name, FAIL, f"cannot invoke {function} ({error_code(exc)})", self._notifier_fix()
            )
        except BotoCoreError as exc:
            return Check(name, FAIL, f"cannot reach AWS Lambda: {exc}", self._cloud_fix())
        except ValueError:
            reply = {}
        if out.get("FunctionError") or not isinstance(reply, dict) or not reply.get("ok"):
            why = reply.get("error") if isinstance(reply, dict) else None
            return Check(
                name,
                FAIL,
                f"{function} failed: {str(why or reply)[:300]}",
                "read its CloudWatch log group /alexa-doorbell/<stack>/notifier",
            )
        users = reply.get("users") or []
        if not users:
            return Check(
                name,
                WARN,
                "the notifier answers; nobody has linked the skill yet",
                "enable the skill in the Alexa app and link your Amazon account",
            )
        relink = sum(bool(u.get("relink_needed")) for u in users)
        if relink:
            return Check(
                name,
                WARN,
                f"the notifier answers; {relink} of {len(users)} linked user(s) must relink",
                "in the Alexa app: Skills > your skill > Disable, then enable and link again",
            )
        return Check(name, OK, f"{function} answers; {len(users)} linked user(s)")

    def _lwa(self) -> Any:
        from alexa_doorbell.amazon.lwa import LwaClient

        client_id, secret = self.s.lwa_credentials()
        return LwaClient(self.s.lwa_url, client_id, secret, timeout=5.0)

    def lwa_client(self) -> Check:
        from alexa_doorbell.amazon.lwa import LwaInvalidClient, LwaInvalidGrant

        name = "lwa client"
        messaging = (
            "use the skill's Alexa Skill Messaging client id and secret (developer console > "
            "your skill > Build > Permissions > Send Alexa Events), not the account-linking "
            "security profile: ALEXA_DOORBELL_LWA_CLIENT_ID and ALEXA_DOORBELL_LWA_CLIENT_SECRET "
            "(or _SECRET_ARN)"
        )
        try:
            lwa = self._lwa()
            lwa.refresh(PROBE_REFRESH_TOKEN)
        except RuntimeError as exc:  # not configured
            return Check(name, FAIL, str(exc).split(":")[0], messaging)
        except LwaInvalidGrant:
            return Check(name, OK, f"{lwa.client_id} accepted by Login with Amazon")
        except LwaInvalidClient as exc:
            return Check(
                name, FAIL, f"Login with Amazon refused the client ({exc.error})", messaging
            )
        except Exception as exc:
            return Check(name, FAIL, f"cannot reach Login with Amazon: {exc}", self._cloud_fix())
        return Check(name, WARN, "a made-up refresh token was accepted: is this really LWA?")

    def linked_users(self) -> Iterator[Check]:
        from alexa_doorbell.amazon.lwa import LwaInvalidClient, LwaInvalidGrant

        try:
            users = self._store_or_raise().list_tokens()
        except Exception as exc:
            yield Check("linked users", FAIL, f"cannot read the store: {exc}", self._store_fix())
            return
        relink = "in the Alexa app: Skills > your skill > Disable, then enable and link again"
        if not users:
            yield Check(
                "linked users",
                WARN,
                "nobody has linked the skill yet",
                "enable the skill in the Alexa app and link your Amazon account",
            )
            return
        try:
            lwa = self._lwa()
        except RuntimeError:
            yield Check("linked users", SKIP, "Login with Amazon is not configured (see above)")
            return
        for tokens in users:
            name = f"user {_short_user(tokens.user_id)}"
            if tokens.relink_needed:
                yield Check(name, FAIL, "marked relink-needed by an earlier refresh", relink)
                continue
            try:
                grant = lwa.refresh(tokens.refresh_token)
            except LwaInvalidGrant:
                yield Check(
                    name, FAIL, "Login with Amazon rejected the stored refresh token", relink
                )
                continue
            except LwaInvalidClient:
                yield Check(name, SKIP, "client credentials refused (see lwa client)")
                continue
            except Exception as exc:
                yield Check(name, FAIL, f"refresh failed: {exc}", self._cloud_fix())
                continue
            if grant.refresh_token != tokens.refresh_token:
                # LWA handed out a new refresh token: keep it, or the link is lost.
                from alexa_doorbell.store.base import ConflictError

                # ConflictError: somebody refreshed meanwhile and stored theirs.
                with contextlib.suppress(ConflictError):
                    self._store_or_raise().put_tokens(
                        tokens.with_(refresh_token=grant.refresh_token),
                        expected_version=tokens.version,
                    )
            status = tokens.last_gateway_status or "no event sent yet"
            if status[:1] in ("4", "5"):
                yield Check(
                    name,
                    WARN,
                    f"token refreshes fine; the last event got {status}",
                    "403 SKILL_DISABLED/NEVER_ENABLED: enable the skill; 403 "
                    "INSUFFICIENT_PERMISSION: relink to grant the events permission",
                )
            else:
                yield Check(name, OK, f"refresh token valid; last event: {status}")

    def skill(self) -> Check:
        name = "skill"
        probe = {
            "directive": {
                "header": {
                    "namespace": "Alexa.Discovery",
                    "name": "Discover",
                    "payloadVersion": "3",
                    "messageId": str(uuid.uuid4()),
                },
                # A token no one has: the skill must answer, not crash or time out.
                "payload": {"scope": {"type": "BearerToken", "token": "doctor-probe"}},
            }
        }
        started = time.monotonic()
        if self.s.is_local:
            try:
                from alexa_doorbell.commands.skill import build_skill

                skill = build_skill(self.s, store=self._store_or_raise())
                with _quiet("alexa_doorbell.skill"):  # the probe's token is refused by design
                    reply = skill.handle(probe)
            except Exception as exc:
                return Check(name, FAIL, f"the skill cannot start: {exc}", self._store_fix())
            where = "in-process skill"
        else:
            if not self.s.skill_function:
                return Check(
                    name,
                    WARN,
                    "not checked: no function configured",
                    "set ALEXA_DOORBELL_SKILL_FUNCTION to the stack output SkillFunctionArn",
                )
            try:
                lam = self.s.boto_session().client("lambda", config=BOTO)
                out = lam.invoke(FunctionName=self.s.skill_function, Payload=json.dumps(probe))
                payload = out["Payload"].read()
            except ClientError as exc:
                code = error_code(exc)
                return Check(
                    name,
                    FAIL,
                    f"cannot invoke {self.s.skill_function} ({code})",
                    "check ALEXA_DOORBELL_SKILL_FUNCTION (the SkillFunctionArn output) and "
                    "that this user may lambda:InvokeFunction it",
                )
            except BotoCoreError as exc:
                return Check(name, FAIL, f"cannot reach AWS Lambda: {exc}", self._cloud_fix())
            if out.get("FunctionError"):
                return Check(
                    name,
                    FAIL,
                    f"the function crashed: {payload[:300]!r}",
                    "read its CloudWatch log group /alexa-doorbell/<stack>/skill",
                )
            try:
                reply = json.loads(payload)
            except ValueError:
                reply = {}
            where = self.s.skill_function
        elapsed = time.monotonic() - started
        header = reply.get("event", {}).get("header", {}) if isinstance(reply, dict) else {}
        payload_ = reply.get("event", {}).get("payload", {}) if header else {}
        if header.get("name") == "ErrorResponse" and payload_.get("type") == "INTERNAL_ERROR":
            return Check(
                name,
                FAIL,
                f"{where} answers INTERNAL_ERROR: {payload_.get('message', '')[:300]}",
                "fix the configuration it names (function environment / settings)",
            )
        if header.get("name") not in ("ErrorResponse", "Discover.Response"):
            return Check(name, FAIL, f"{where} gave no Alexa reply: {str(reply)[:200]}", "")
        return Check(name, OK, f"{where} answered a probe directive in {elapsed * 1000:.0f} ms")


def _short_user(user_id: str) -> str:
    return user_id if len(user_id) <= 24 else f"{user_id[:18]}…{user_id[-4:]}"


@contextlib.contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """Hold back a logger's warnings: the checks print what they saw themselves."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)
