"""``alexa-doorbell doctor``: check a configuration end to end, changing nothing.

Each check reports ok / warn / FAIL with what it saw and, when something is
wrong, the fix. The same checks run against the local cloud and AWS; where the
two differ (credentials probe, where "camera online" comes from, how the skill
is reached) the check says which it used.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import logging
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

if TYPE_CHECKING:
    from alexa_doorbell.config import CameraConfig, Settings
    from alexa_doorbell.store.base import Store

OK, WARN, FAIL, SKIP = "ok", "warn", "FAIL", "skip"
SKEW_WARN = 30.0  # seconds
SKEW_FAIL = 240.0  # SigV4 refuses requests more than 5 minutes off
# A refresh token that cannot exist: LWA checks the client first, so
# invalid_grant proves the client id/secret are right without any user's token.
PROBE_REFRESH_TOKEN = "Atzr|alexa-doorbell-doctor-probe"
STUN_TIMEOUT = 3.0  # seconds for a STUN binding request (retransmitted from 0.5 s)
TURN_TIMEOUT = 5.0  # seconds for one TURN allocation
_BOTO = Config(connect_timeout=3, read_timeout=8, retries={"max_attempts": 1})


@dataclass
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "") or "Error"


def _short_user(user_id: str) -> str:
    return user_id if len(user_id) <= 24 else f"{user_id[:18]}…{user_id[-4:]}"


class Doctor:
    def __init__(self, settings: Settings, *, now: Callable[[], float] = time.time) -> None:
        self.s = settings
        self.now = now
        self._store: Store | None = None
        self._channels_ok: dict[str, bool] = {}

    # -- helpers -----------------------------------------------------------
    def _client(self, service: str) -> Any:
        return self.s.boto_session().client(
            service, endpoint_url=self.s.endpoint_url(), config=_BOTO
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

    # -- the checks ----------------------------------------------------------
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

    def region(self) -> Check:
        import boto3

        regions = boto3.session.Session().get_available_regions("kinesisvideo")
        if self.s.region in regions:
            return Check("region", OK, f"{self.s.region} has Kinesis Video Streams")
        return Check(
            "region",
            FAIL,
            f"{self.s.region!r} is not a Kinesis Video Streams region",
            "set ALEXA_DOORBELL_REGION to the region you deployed the stack to "
            "(us-east-1 for North America, eu-west-1 for Europe, us-west-2 for the Far East)",
        )

    def credentials(self) -> Check:
        name = "aws credentials"
        try:
            if self.s.is_local:
                self._client("kinesisvideo").list_signaling_channels(MaxResults=1)
                return Check(name, OK, f"accepted by the local cloud at {self.s.local.url}")
            ident = self._client("sts").get_caller_identity()
            return Check(name, OK, f"account {ident['Account']} as {ident['Arn']}")
        except NoCredentialsError:
            return Check(
                name,
                FAIL,
                "no AWS credentials found",
                "run `aws configure` (or set AWS_PROFILE / AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY) for a user with the camera agent policy",
            )
        except ClientError as exc:
            code = _code(exc)
            if self.s.is_local:
                fix = (
                    "the local cloud accepts only its emulator keys: remove any "
                    "ALEXA_DOORBELL_LOCAL__AWS_ACCESS_KEY_ID / __AWS_SECRET_ACCESS_KEY override"
                )
            else:
                fix = (
                    "the access key is wrong, disabled or expired: create a new one "
                    "(IAM > Users > Security credentials) and run `aws configure`"
                )
            return Check(name, FAIL, f"{self._where} refused them ({code})", fix)
        except BotoCoreError as exc:
            return Check(name, FAIL, f"cannot reach {self._where}: {exc}", self._cloud_fix())

    def clock(self) -> Check:
        name = "clock skew"
        url = (
            f"{self.s.local.url}/_local/status"
            if self.s.is_local
            else f"https://kinesisvideo.{self.s.region}.amazonaws.com/"
        )
        try:
            with urllib.request.urlopen(url, timeout=5) as reply:
                date = reply.headers.get("Date")
        except urllib.error.HTTPError as exc:  # any answer carries a Date
            date = exc.headers.get("Date")
        except OSError as exc:
            return Check(name, FAIL, f"cannot reach {url}: {exc}", self._cloud_fix())
        if not date:
            return Check(name, WARN, f"{url} sent no Date header to compare with")
        skew = self.now() - email.utils.parsedate_to_datetime(date).timestamp()
        detail = f"this machine is {abs(skew):.0f} s {'ahead' if skew > 0 else 'behind'}"
        fix = "synchronise the clock with NTP (e.g. `timedatectl set-ntp true`)"
        if abs(skew) > SKEW_FAIL:
            return Check(name, FAIL, detail + ": AWS refuses signatures over 5 minutes", fix)
        if abs(skew) > SKEW_WARN:
            return Check(name, WARN, detail, fix)
        return Check(name, OK, detail)

    def channel(self, cam: CameraConfig) -> Check:
        name = f"channel {cam.channel_name}"
        self._channels_ok[cam.endpoint_id] = False
        try:
            info = self._client("kinesisvideo").describe_signaling_channel(
                ChannelName=cam.channel_name
            )["ChannelInfo"]
        except ClientError as exc:
            code = _code(exc)
            if code == "ResourceNotFoundException":
                fix = (
                    "the local cloud creates the channels of the configured cameras when it "
                    "starts: restart `alexa-doorbell cloud` with this configuration"
                    if self.s.is_local
                    else f"deploy the stack with Camera1ChannelName={cam.channel_name} (or "
                    "another CameraNChannelName), or fix cameras[].channel_name"
                )
                return Check(name, FAIL, f"no such channel in {self._where}", fix)
            return Check(
                name,
                FAIL,
                f"DescribeSignalingChannel refused ({code})",
                "give this user the camera agent policy (deploy/camera-agent-policy.json)",
            )
        except BotoCoreError as exc:
            return Check(name, FAIL, f"cannot reach {self._where}: {exc}", self._cloud_fix())
        status = info.get("ChannelStatus", "?")
        if status != "ACTIVE":
            return Check(name, FAIL, f"channel is {status}", "wait for ACTIVE or recreate it")
        detail = info["ChannelARN"]
        if cam.channel_arn and cam.channel_arn != info["ChannelARN"]:
            return Check(
                name,
                WARN,
                f"configured ARN differs from the channel's {detail}",
                "remove cameras[].channel_arn or set it to the ARN shown",
            )
        self._channels_ok[cam.endpoint_id] = True
        return Check(name, OK, detail)

    def camera_online(self, cam: CameraConfig) -> Check:
        from alexa_doorbell.camera.runstate import read_state

        name = f"camera {cam.endpoint_id}"
        start = (
            f"start the camera agent: `alexa-doorbell camera --endpoint-id {cam.endpoint_id}` "
            "(or its service); its log says why it cannot connect"
        )
        if not self._channels_ok.get(cam.endpoint_id):
            return Check(name, SKIP, "its channel is not usable (see above)")
        # An agent for this camera on this machine says how it is doing (camera/runstate.py).
        here = read_state(self.s.data_dir, cam.endpoint_id)
        if self.s.is_local:
            return self._camera_on_local_cloud(name, cam, here, start)
        if here is not None and here.report_error:
            return Check(
                name,
                FAIL,
                f"an agent runs here (pid {here.pid}) but its heartbeats do not reach the "
                f"table: {here.report_error}",
                self._notifier_fix(),
            )
        if here is not None and not here.connected:  # running, but not MASTER of its channel
            why = here.signaling_error or "not yet"
            return Check(name, FAIL, f"its agent (pid {here.pid}) is not connected: {why}", start)
        if not self.s.store_url:
            # No table named (the camera machine): only what its own agent says.
            if here is None:
                return Check(name, FAIL, "no camera agent runs on this machine", start)
            age = self.now() - (here.report_at or here.started_at)
            return Check(name, OK, f"agent pid {here.pid}, heartbeat delivered {age:.0f} s ago")
        # AWS cannot tell who is connected: use the agent's heartbeat, as the skill does.
        try:
            health = self._store_or_raise().get_health(cam.endpoint_id)
        except Exception as exc:
            return Check(name, FAIL, f"cannot read the store: {exc}", self._store_fix())
        both = (
            f"{start}. If it runs, its heartbeats do not reach the table: "
            + self._notifier_fix()
            + "; `alexa-doorbell doctor` on the camera machine tells which"
        )
        if health is None:
            if here is not None:  # running here, reports delivered, yet none in the table
                return Check(
                    name,
                    FAIL,
                    f"an agent runs here (pid {here.pid}) but no heartbeat is in the table",
                    self._notifier_fix(),
                )
            return Check(name, FAIL, "its agent never reported (no heartbeat in the store)", both)
        age = self.now() - health.updated_at
        if health.effective(self.s.health_max_age, now=self.now()) != "OK":
            return Check(
                name,
                FAIL,
                f"last report {health.connectivity}, {age:.0f} s ago: Alexa sees it unreachable",
                start if here is None else self._notifier_fix(),
            )
        return Check(name, OK, f"agent heartbeat {age:.0f} s ago")

    def media_path(self) -> Iterator[Check]:
        """What the camera's answer can offer beyond its LAN address: the public address
        STUN sees, and TURN relays (camera/ice.py). Nothing to check without either."""
        from alexa_doorbell.camera import ice

        for url in self.s.stun_urls:
            probe = ice.check_stun(url, STUN_TIMEOUT)
            host = ice.parse_stun_url(url)[0]
            yield Check(f"stun {host}", OK if probe.ok else FAIL, probe.detail, probe.fix)
        if self.s.use_turn:
            yield self.turn()

    def turn(self) -> Check:
        from alexa_doorbell.camera import ice
        from alexa_doorbell.kvs import api

        cam = next((c for c in self.s.cameras if self._channels_ok.get(c.endpoint_id)), None)
        if cam is None:
            return Check("turn", SKIP, "no usable signaling channel (see above)")
        try:
            kv = self._client("kinesisvideo")
            arn = cam.channel_arn or api.describe_channel_arn(kv, cam.channel_name)
            https = api.get_channel_endpoints(kv, arn, "MASTER").https
            sig = self.s.boto_session().client(
                "kinesis-video-signaling", endpoint_url=https, config=_BOTO
            )
            entries = sig.get_ice_server_config(ChannelARN=arn, Service="TURN")["IceServerList"]
        except ClientError as exc:
            return Check(
                "turn",
                FAIL,
                f"GetIceServerConfig refused ({_code(exc)})",
                "give the camera's IAM user kinesisvideo:GetIceServerConfig on its channel "
                "(deploy/camera-agent-policy.json)",
            )
        except BotoCoreError as exc:
            return Check("turn", FAIL, f"cannot reach {self._where}: {exc}", self._cloud_fix())
        tls = ice.IceServers(self.s).tls_context
        probe = ice.check_turn(entries, self.s.turn_transport, tls, TURN_TIMEOUT)
        detail = f"turn_transport {self.s.turn_transport}: {probe.detail}"
        return Check("turn", OK if probe.ok else FAIL, detail, probe.fix)

    def _camera_on_local_cloud(self, name: str, cam: CameraConfig, here: Any, start: str) -> Check:
        from alexa_doorbell.cloud.admin import admin_headers

        url = f"{self.s.local.url}/_local/status"
        try:
            req = urllib.request.Request(url, headers=admin_headers())
            with urllib.request.urlopen(req, timeout=5) as r:
                status = json.load(r)
        except (OSError, ValueError) as exc:
            return Check(name, FAIL, f"cannot ask the local cloud: {exc}", self._cloud_fix())
        for ch in status.get("channels", []):
            if ch.get("ChannelName") == cam.channel_name:
                if ch.get("master"):
                    return Check(name, OK, "a master is connected to its channel")
                if here is not None:
                    why = here.signaling_error or "still connecting"
                    return Check(
                        name,
                        FAIL,
                        f"its agent runs (pid {here.pid}) but is not connected: {why}",
                        "check ALEXA_DOORBELL_LOCAL__HOST/PORT on both sides and the agent's log",
                    )
                return Check(name, FAIL, "no master is connected to its channel", start)
        return Check(name, FAIL, "the local cloud does not list its channel", start)

    def _notifier_fix(self) -> str:
        return (
            "on the camera machine set notifier_function to the stack output "
            "NotifierFunctionArn, give its IAM user the CameraAgentPolicy (lambda:InvokeFunction "
            "on the notifier), then restart the agent"
        )

    def notifier(self) -> Check:
        """The notifier Lambda answers this machine (what presses and heartbeats need)."""
        name = "notifier"
        function = self.s.notifier_function or ""
        try:
            lam = self.s.boto_session().client("lambda", config=_BOTO)
            out = lam.invoke(FunctionName=function, Payload=json.dumps({"action": "status"}))
            reply = json.loads(out["Payload"].read() or b"{}")
        except ClientError as exc:
            return Check(
                name, FAIL, f"cannot invoke {function} ({_code(exc)})", self._notifier_fix()
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

    def _store_fix(self) -> str:
        return (
            "set ALEXA_DOORBELL_STORE_URL to sqlite:///path or dynamodb://<StoreTableName "
            "output of the stack>, with read access for this user"
        )

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
                lam = self.s.boto_session().client("lambda", config=_BOTO)
                out = lam.invoke(FunctionName=self.s.skill_function, Payload=json.dumps(probe))
                payload = out["Payload"].read()
            except ClientError as exc:
                code = _code(exc)
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

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


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


def _redact_url(url: str) -> str:
    # Store URLs carry no secrets today; keep it that way in the output regardless.
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.split('@')[-1]}"
