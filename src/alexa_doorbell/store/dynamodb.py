"""The DynamoDB store: one on-demand table, boto3's low-level client only (Lambda-safe).

Table design (the SAM template creates it; keys are strings)::

    pk          sk                              item
    ----------  ------------------------------  ----------------------------------------
    TOKENS      <user_id>                       a linked user's LWA tokens + version
    DEVICE      <endpoint_id>                   one camera in the catalog
    HEALTH      <endpoint_id>                   the camera agent's last connectivity report
    MOTION      <endpoint_id>                   the motion state last reported to Alexa
    CLASSES     <user_id>|<endpoint_id>         object classes a user enabled for a camera
    SESSION     <session_id>                    an Alexa RTC session (ttl: 7 days)
    EVENT       <at>#<ns>#<rand>                an event sent toward Alexa (ttl: 30 days)
    PRESS       <endpoint_id>                   the doorbell's last press claim (ttl: 1 day)
    SEEN        <endpoint_id>|<class>           last sighting of a class (ttl: 1 day)

One item collection per kind keeps every read a strongly consistent GetItem or
Query (no scans, no eventually consistent indexes) at home scale: a few users,
a few cameras. ``ttl`` (epoch seconds) lets DynamoDB expire old sessions and
event records; tokens never expire (a lost refresh token means relinking).

Token writes are conditional: the skill and the notifier Lambdas may refresh
the same user's token at once, and ``expected_version`` makes exactly one of
them win (``ConditionalCheckFailedException`` -> ``ConflictError``). So are press
claims: of the Lambdas one press wakes at once, one ``PutItem`` succeeds; and
sightings: one ``UpdateItem`` keeps the last-seen time it replaced. A claim
writes an id, so a retried write that already applied knows it won.
"""

from __future__ import annotations

import os
import secrets
import time
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from alexa_doorbell.store.base import (
    ConflictError,
    DetectionClasses,
    Device,
    EventRecord,
    Health,
    Motion,
    RtcSession,
    Store,
    StoreError,
    Tokens,
    cooldown_over,
)
from alexa_doorbell.store.dynamodb_items import (
    PK,
    SK,
    TOKEN_FIELDS,
    TTL,
    attr_n,
    attr_s,
    attr_value,
    classes_of,
    device_of,
    get_value,
    session_of,
    tokens_of,
)

KEEP_SESSIONS_SECONDS = 7 * 24 * 3600  # as the SQLite store
KEEP_EVENTS_SECONDS = 30 * 24 * 3600
KEEP_CLAIMS_SECONDS = 24 * 3600  # a claim matters for seconds; ttl only tidies the table

# The skill answers Alexa within a few seconds: fail fast, retry briefly.
_CONFIG = Config(connect_timeout=2, read_timeout=3, retries={"max_attempts": 3, "mode": "standard"})


class _ConditionFailed(ConflictError):
    """A condition failed; ``item`` is the item as it stood, when the request asked for it
    (``ReturnValuesOnConditionCheckFailure=ALL_OLD``)."""

    def __init__(self, message: str, item: dict[str, Any] | None) -> None:
        super().__init__(message)
        self.item = item


class DynamoDbStore(Store):
    """The Store on one DynamoDB table (``dynamodb://table-name``).

    The client comes from boto3's default chain (region from ``AWS_REGION`` /
    ``AWS_DEFAULT_REGION``; ``AWS_ENDPOINT_URL_DYNAMODB`` for a local DynamoDB)
    unless one is passed in.
    """

    def __init__(
        self,
        table: str,
        *,
        client: Any = None,
        region: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        if not table:
            raise StoreError("DynamoDB store needs a table name: dynamodb://table-name")
        self.table = table
        if client is None:
            import boto3

            region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
            client = boto3.client(
                "dynamodb", region_name=region, endpoint_url=endpoint_url, config=_CONFIG
            )
        self._db = client

    def __repr__(self) -> str:
        return f"DynamoDbStore({self.table!r})"

    # -- plumbing ----------------------------------------------------------
    def _call(self, op: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return getattr(self._db, op)(TableName=self.table, **kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ConditionalCheckFailedException":
                raise _ConditionFailed(
                    f"conditional write on {self.table} lost a race", exc.response.get("Item")
                ) from exc
            if code == "ResourceNotFoundException":
                raise StoreError(
                    f"DynamoDB table {self.table!r} not found (region "
                    f"{self._db.meta.region_name}): deploy the stack or fix "
                    "ALEXA_DOORBELL_STORE_URL"
                ) from exc
            message = exc.response.get("Error", {}).get("Message", "")
            raise StoreError(f"DynamoDB {op} on {self.table} failed: {code} {message}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"DynamoDB {op} on {self.table} failed: {exc}") from exc

    def _key(self, pk: str, sk: str) -> dict[str, Any]:
        return {PK: attr_s(pk), SK: attr_s(sk)}

    def _get_item(self, pk: str, sk: str) -> dict[str, Any] | None:
        return self._call("get_item", Key=self._key(pk, sk), ConsistentRead=True).get("Item")

    def _query(self, pk: str, *, forward: bool = True, limit: int | None = None) -> list[dict]:
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": PK},
            "ExpressionAttributeValues": {":pk": attr_s(pk)},
            "ConsistentRead": True,
            "ScanIndexForward": forward,
        }
        items: list[dict] = []
        while True:
            if limit is not None:
                kwargs["Limit"] = limit - len(items)
            page = self._call("query", **kwargs)
            items.extend(page.get("Items", []))
            start = page.get("LastEvaluatedKey")
            if not start or (limit is not None and len(items) >= limit):
                return items
            kwargs["ExclusiveStartKey"] = start

    def _put(self, pk: str, sk: str, attrs: dict[str, Any]) -> None:
        item = self._key(pk, sk)
        item.update({k: attr_value(v) for k, v in attrs.items() if v is not None})
        self._call("put_item", Item=item)

    def _delete(self, pk: str, sk: str) -> None:
        self._call("delete_item", Key=self._key(pk, sk))

    # -- tokens ------------------------------------------------------------
    def get_tokens(self, user_id: str) -> Tokens | None:
        item = self._get_item("TOKENS", user_id)
        return tokens_of(item) if item else None

    def put_tokens(self, tokens: Tokens, *, expected_version: int | None = None) -> Tokens:
        names = {"#v": "version"}
        values: dict[str, Any] = {}
        sets, removes = [], []
        for i, field in enumerate(TOKEN_FIELDS):
            value = getattr(tokens, field)
            names[f"#f{i}"] = field
            if value is None:
                removes.append(f"#f{i}")
            else:
                values[f":f{i}"] = attr_value(value)
                sets.append(f"#f{i} = :f{i}")
        kwargs: dict[str, Any] = {}
        if expected_version is None:
            # Unconditional, but still atomic: the version counts every write.
            values[":zero"], values[":one"] = attr_n(0), attr_n(1)
            sets.append("#v = if_not_exists(#v, :zero) + :one")
        elif expected_version == 0:
            values[":one"] = attr_n(1)
            sets.append("#v = :one")
            kwargs["ConditionExpression"] = "attribute_not_exists(#pk)"
            names["#pk"] = PK
        else:
            values[":ev"] = attr_n(expected_version)
            values[":next"] = attr_n(expected_version + 1)
            sets.append("#v = :next")
            kwargs["ConditionExpression"] = "#v = :ev"
        expression = "SET " + ", ".join(sets)
        if removes:
            expression += " REMOVE " + ", ".join(removes)
        reply = self._call(
            "update_item",
            Key=self._key("TOKENS", tokens.user_id),
            UpdateExpression=expression,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
            **kwargs,
        )
        return tokens_of(reply["Attributes"])

    def list_tokens(self) -> list[Tokens]:
        return [tokens_of(item) for item in self._query("TOKENS")]

    def delete_tokens(self, user_id: str) -> None:
        self._delete("TOKENS", user_id)

    # -- devices -----------------------------------------------------------
    def put_device(self, device: Device) -> None:
        self._put(
            "DEVICE",
            device.endpoint_id,
            {
                "friendly_name": device.friendly_name,
                "channel_name": device.channel_name,
                "description": device.description,
                "manufacturer": device.manufacturer,
                "channel_arn": device.channel_arn,
                "doorbell": device.doorbell,
                "full_duplex": device.full_duplex,
                "owner": device.owner,
                "motion": device.motion,
                "detection_classes": ",".join(device.detection_classes) or None,
            },
        )

    def get_device(self, endpoint_id: str) -> Device | None:
        item = self._get_item("DEVICE", endpoint_id)
        return device_of(item) if item else None

    def list_devices(self) -> list[Device]:
        return [device_of(item) for item in self._query("DEVICE")]

    def delete_device(self, endpoint_id: str) -> None:
        self._delete("DEVICE", endpoint_id)

    # -- sessions ----------------------------------------------------------
    def put_session(self, session: RtcSession) -> None:
        self._put(
            "SESSION",
            session.session_id,
            {
                "endpoint_id": session.endpoint_id,
                "state": session.state,
                "updated_at": float(session.updated_at),
                TTL: int(time.time() + KEEP_SESSIONS_SECONDS),
            },
        )

    def get_session(self, session_id: str) -> RtcSession | None:
        item = self._get_item("SESSION", session_id)
        return session_of(item) if item else None

    def list_sessions(self, endpoint_id: str, *, since: float = 0.0) -> list[RtcSession]:
        sessions = [
            s
            for s in map(session_of, self._query("SESSION"))
            if s.endpoint_id == endpoint_id and s.updated_at >= since
        ]
        return sorted(sessions, key=lambda s: (s.updated_at, s.session_id))

    # -- health ------------------------------------------------------------
    def put_health(self, health: Health) -> None:
        self._put(
            "HEALTH",
            health.endpoint_id,
            {"connectivity": health.connectivity, "updated_at": float(health.updated_at)},
        )

    def get_health(self, endpoint_id: str) -> Health | None:
        item = self._get_item("HEALTH", endpoint_id)
        if not item:
            return None
        return Health(
            endpoint_id, get_value(item, "connectivity"), float(get_value(item, "updated_at"))
        )

    # -- motion and object detection -----------------------------------------
    def put_motion(self, motion: Motion) -> None:
        self._put(
            "MOTION",
            motion.endpoint_id,
            {"state": motion.state, "updated_at": float(motion.updated_at)},
        )

    def get_motion(self, endpoint_id: str) -> Motion | None:
        item = self._get_item("MOTION", endpoint_id)
        if not item:
            return None
        return Motion(endpoint_id, get_value(item, "state"), float(get_value(item, "updated_at")))

    def put_detection_classes(self, classes: DetectionClasses) -> None:
        # An endpointId has no "|" (Alexa's pattern): the key splits one way only.
        self._put(
            "CLASSES",
            f"{classes.user_id}|{classes.endpoint_id}",
            {
                "user_id": classes.user_id,
                "endpoint_id": classes.endpoint_id,
                "classes": ",".join(classes.classes) or None,  # absent: none enabled
                "updated_at": float(classes.updated_at),
            },
        )

    def get_detection_classes(self, user_id: str, endpoint_id: str) -> DetectionClasses | None:
        item = self._get_item("CLASSES", f"{user_id}|{endpoint_id}")
        if not item:
            return None
        return DetectionClasses(
            user_id,
            endpoint_id,
            classes_of(get_value(item, "classes", "")),
            float(get_value(item, "updated_at")),
        )

    # -- event records -----------------------------------------------------
    def add_event_record(self, record: EventRecord) -> None:
        # Sort key: time, then a clock tie-breaker (insertion order), then randomness.
        sk = f"{record.at:020.6f}#{time.time_ns():020d}#{secrets.token_hex(4)}"
        self._put(
            "EVENT",
            sk,
            {
                "at": float(record.at),
                "user_id": record.user_id,
                "endpoint_id": record.endpoint_id,
                "name": record.name,
                "status": record.status,
                "detail": record.detail,
                TTL: int(time.time() + KEEP_EVENTS_SECONDS),
            },
        )

    def recent_event_records(self, limit: int = 50) -> list[EventRecord]:
        limit = max(0, int(limit))
        if limit == 0:
            return []
        return [
            EventRecord(
                at=float(get_value(item, "at")),
                user_id=get_value(item, "user_id"),
                endpoint_id=get_value(item, "endpoint_id"),
                name=get_value(item, "name"),
                status=get_value(item, "status"),
                detail=get_value(item, "detail", ""),
            )
            for item in self._query("EVENT", forward=False, limit=limit)
        ]

    # -- press claims ------------------------------------------------------
    # botocore retries a write whose reply was lost (a read timeout, a 500). When the
    # lost attempt applied, the retry's condition fails on our own write: each claim
    # writes an id, and the item returned on failure tells "we won before" from "lost".
    def claim_press(self, endpoint_id: str, claim_id: str, *, at: float, window: float) -> bool:
        item = self._key("PRESS", endpoint_id)
        item.update(
            claim_id=attr_s(claim_id),
            claimed_at=attr_n(float(at)),
            **{TTL: attr_n(int(time.time() + KEEP_CLAIMS_SECONDS))},
        )
        try:
            self._call(
                "put_item",
                Item=item,
                ConditionExpression="attribute_not_exists(#pk) OR #at <= :cutoff OR #at > :ahead",
                ExpressionAttributeNames={"#pk": PK, "#at": "claimed_at"},
                ExpressionAttributeValues={
                    ":cutoff": attr_n(float(at - window)),
                    ":ahead": attr_n(float(at + window)),
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except _ConditionFailed as exc:
            return get_value(exc.item or {}, "claim_id") == claim_id
        return True

    def release_press(self, endpoint_id: str, claim_id: str) -> bool:
        try:
            self._call(
                "delete_item",
                Key=self._key("PRESS", endpoint_id),
                ConditionExpression="#id = :id",
                ExpressionAttributeNames={"#id": "claim_id"},
                ExpressionAttributeValues={":id": attr_s(claim_id)},
            )
        except ConflictError:
            return False
        return True

    # -- detection claims ----------------------------------------------------
    def claim_detection(
        self, endpoint_id: str, image_net_class: str, *, at: float, cooldown: float
    ) -> bool:
        # One UpdateItem moves last_seen forward (or past a clock set back) and keeps the
        # value it replaced in prev_seen, so of two Lambdas seeing the same person one is
        # first. The decision reads prev_seen from the item as written (ALL_NEW), and a
        # retry whose lost first attempt applied finds its own claim id and that attempt's
        # prev_seen in the item the failed condition returns.
        claim_id = secrets.token_hex(8)
        try:
            reply = self._call(
                "update_item",
                Key=self._key("SEEN", f"{endpoint_id}|{image_net_class}"),
                UpdateExpression=(
                    "SET #prev = if_not_exists(#seen, :none), #seen = :at, #id = :id, #ttl = :ttl"
                ),
                ConditionExpression="attribute_not_exists(#pk) OR #seen < :at OR #seen > :ahead",
                ExpressionAttributeNames={
                    "#pk": PK,
                    "#seen": "last_seen",
                    "#prev": "prev_seen",
                    "#id": "claim_id",
                    "#ttl": TTL,
                },
                ExpressionAttributeValues={
                    ":at": attr_n(float(at)),
                    ":ahead": attr_n(float(at + cooldown)),
                    ":none": {"NULL": True},
                    ":id": attr_s(claim_id),
                    ":ttl": attr_n(int(time.time() + KEEP_CLAIMS_SECONDS)),
                },
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            item = reply["Attributes"]
        except _ConditionFailed as exc:  # seen at or after ``at``, and not from the future
            item = exc.item or {}
            if get_value(item, "claim_id") != claim_id:
                return False
        prev = get_value(item, "prev_seen")
        return cooldown_over(None if prev is None else float(prev), at, cooldown)
