"""The AWS side every machine needs: the region, credentials, the clock, each camera's channel."""

from __future__ import annotations

import email.utils
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from alexa_doorbell.doctor.base import FAIL, OK, WARN, Check, DoctorBase, error_code

if TYPE_CHECKING:
    from alexa_doorbell.config import CameraConfig

SKEW_WARN = 30.0  # seconds
SKEW_FAIL = 240.0  # SigV4 refuses requests more than 5 minutes off


class AwsChecks(DoctorBase):
    """Checks of the AWS account and the signaling channels."""

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
            code = error_code(exc)
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
            code = error_code(exc)
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
