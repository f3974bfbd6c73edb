"""Discovery descriptions of a camera or video doorbell (Discover.Response, AddOrUpdateReport)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from alexa_doorbell.alexa import smartvision


class DeviceLike(Protocol):
    """What a discovery description needs; ``store.base.Device`` has it."""

    endpoint_id: str
    friendly_name: str
    description: str
    manufacturer: str
    doorbell: bool
    full_duplex: bool
    motion: bool  # a motion input: Alexa.MotionSensor
    detection_classes: Sequence[str]  # person/package detection: SmartVision.ObjectDetectionSensor


def _iface(interface: str, **extra: Any) -> dict[str, Any]:
    return {"type": "AlexaInterface", "interface": interface, "version": "3", **extra}


def capabilities(
    doorbell: bool,
    full_duplex: bool,
    *,
    motion: bool = False,
    detection_classes: Sequence[str] = (),
) -> list[dict[str, Any]]:
    caps = [
        _iface("Alexa"),
        # Full duplex = tap-to-talk; half duplex = push-to-talk. Advertise full
        # duplex only for a camera that has a speaker.
        _iface(
            "Alexa.RTCSessionController",
            configuration={"isFullDuplexAudioSupported": bool(full_duplex)},
        ),
    ]
    if doorbell:
        caps.append(_iface("Alexa.DoorbellEventSource", proactivelyReported=True))
    if motion:
        caps.append(
            _iface(
                "Alexa.MotionSensor",
                properties={
                    "supported": [{"name": "detectionState"}],
                    "proactivelyReported": True,
                    "retrievable": True,
                },
            )
        )
    if smartvision.accepted(detection_classes):
        caps.append(smartvision.capability(detection_classes))
    caps.append(
        _iface(
            "Alexa.EndpointHealth",
            properties={
                "supported": [{"name": "connectivity"}],
                "proactivelyReported": True,
                "retrievable": True,
            },
        )
    )
    return caps


def display_categories(doorbell: bool) -> list[str]:
    # CAMERA first: the first category is the app icon, and with CAMERA first a
    # doorbell press opens the live view on an Echo Show.
    return ["CAMERA", "DOORBELL"] if doorbell else ["CAMERA"]


def endpoint_description(device: DeviceLike) -> dict[str, Any]:
    """One ``endpoints[]`` entry; string fields are clipped to the schema's 128 characters."""
    return {
        "endpointId": device.endpoint_id,
        "manufacturerName": (device.manufacturer or "alexa-doorbell")[:128],
        "friendlyName": (device.friendly_name or device.endpoint_id)[:128],
        "description": (device.description or "Camera")[:128],
        "displayCategories": display_categories(device.doorbell),
        "capabilities": capabilities(
            device.doorbell,
            device.full_duplex,
            motion=device.motion,
            detection_classes=device.detection_classes,
        ),
    }
