"""The camera's media path: the public address STUN sees, and the TURN relays KVS hands out."""

from __future__ import annotations

from collections.abc import Iterator

from botocore.exceptions import BotoCoreError, ClientError

from alexa_doorbell.doctor.base import BOTO, FAIL, OK, SKIP, Check, DoctorBase, error_code

STUN_TIMEOUT = 3.0  # seconds for a STUN binding request (retransmitted from 0.5 s)
TURN_TIMEOUT = 5.0  # seconds for one TURN allocation


class MediaChecks(DoctorBase):
    """Checks of STUN and TURN, with the settings that turn them on."""

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
                "kinesis-video-signaling", endpoint_url=https, config=BOTO
            )
            entries = sig.get_ice_server_config(ChannelARN=arn, Service="TURN")["IceServerList"]
        except ClientError as exc:
            return Check(
                "turn",
                FAIL,
                f"GetIceServerConfig refused ({error_code(exc)})",
                "give the camera's IAM user kinesisvideo:GetIceServerConfig on its channel "
                "(deploy/camera-agent-policy.json)",
            )
        except BotoCoreError as exc:
            return Check("turn", FAIL, f"cannot reach {self._where}: {exc}", self._cloud_fix())
        tls = ice.IceServers(self.s).tls_context
        probe = ice.check_turn(entries, self.s.turn_transport, tls, TURN_TIMEOUT)
        detail = f"turn_transport {self.s.turn_transport}: {probe.detail}"
        return Check("turn", OK if probe.ok else FAIL, detail, probe.fix)
