"""DynamoDB items of the store: attribute values in and out, one decoder per kind.

Pure: no client, no I/O. ``store/dynamodb.py`` reads and writes the table with these.
"""

from __future__ import annotations

from typing import Any

from alexa_doorbell.store.base import Device, RtcSession, StoreError, Tokens

PK = "pk"
SK = "sk"
TTL = "ttl"

TOKEN_FIELDS = (
    "access_token",
    "refresh_token",
    "expires_at",
    "region",
    "last_refresh_at",
    "relink_needed",
    "last_gateway_status",
)


def attr_s(value: str) -> dict[str, str]:
    return {"S": value}


def attr_n(value: float | int) -> dict[str, str]:
    return {"N": repr(value) if isinstance(value, float) else str(value)}


def attr_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return attr_n(value)
    return attr_s(value)


def get_value(item: dict[str, Any], name: str, default: Any = None) -> Any:
    """Plain Python value of one attribute (S, N, BOOL or NULL)."""
    attr = item.get(name)
    if attr is None or "NULL" in attr:
        return default
    if "S" in attr:
        return attr["S"]
    if "BOOL" in attr:
        return attr["BOOL"]
    if "N" in attr:
        text = attr["N"]
        return int(text) if text.lstrip("-").isdigit() else float(text)
    raise StoreError(f"unexpected DynamoDB attribute {name}: {sorted(attr)}")


def tokens_of(item: dict[str, Any]) -> Tokens:
    last = get_value(item, "last_refresh_at")
    return Tokens(
        user_id=get_value(item, SK),
        access_token=get_value(item, "access_token"),
        refresh_token=get_value(item, "refresh_token"),
        expires_at=float(get_value(item, "expires_at")),
        region=get_value(item, "region", "NA"),
        last_refresh_at=None if last is None else float(last),
        relink_needed=bool(get_value(item, "relink_needed", False)),
        last_gateway_status=get_value(item, "last_gateway_status"),
        version=int(get_value(item, "version", 0)),
    )


def device_of(item: dict[str, Any]) -> Device:
    return Device(
        endpoint_id=get_value(item, SK),
        friendly_name=get_value(item, "friendly_name"),
        channel_name=get_value(item, "channel_name"),
        description=get_value(item, "description", "Camera"),
        manufacturer=get_value(item, "manufacturer", "alexa-doorbell"),
        channel_arn=get_value(item, "channel_arn"),
        doorbell=bool(get_value(item, "doorbell", False)),
        full_duplex=bool(get_value(item, "full_duplex", False)),
        owner=get_value(item, "owner"),
        motion=bool(get_value(item, "motion", False)),
        detection_classes=classes_of(get_value(item, "detection_classes", "")),
    )


def classes_of(text: str) -> tuple[str, ...]:
    """Object classes stored as "person,package" (class names have no commas)."""
    return tuple(c for c in text.split(",") if c)


def session_of(item: dict[str, Any]) -> RtcSession:
    return RtcSession(
        session_id=get_value(item, SK),
        endpoint_id=get_value(item, "endpoint_id"),
        state=get_value(item, "state"),
        updated_at=float(get_value(item, "updated_at")),
    )
