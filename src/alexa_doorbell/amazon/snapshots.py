"""Snapshots Alexa can fetch: a JPEG in S3 and a presigned HTTPS GET URL for it.

The picture of the moment (a detector's snapshot, or the camera's current frame)
goes to the snapshot bucket under the camera's prefix, and the presigned URL is
what an ``ObjectDetection`` event carries as ``frameImageUri``:

    store = SnapshotStore.from_settings(settings)
    snap = store.put("front-door", jpeg, event_id="1718-abc")      # Snapshot
    snap.url, snap.expires_at       # https://…?X-Amz-Signature=…, unix seconds
    store.get(snap.key)             # the same bytes (the dashboard's timeline)
    store.close()                   # or: with SnapshotStore.from_settings(settings) as store:

In AWS the bucket is the stack's ``SnapshotBucket`` (``snapshot_bucket``): private,
encrypted, objects expire after 30 days; the camera agent's policy allows
``s3:PutObject`` and ``s3:GetObject`` under ``snapshots/`` only (a presigned URL
works only while its signer may read the object). On one machine the local
cloud's S3 emulator answers the same calls on its TLS port, so the URL is
``https://`` there too; nothing else changes. Synchronous boto3 calls: from
asyncio use :meth:`SnapshotStore.put_async`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from alexa_doorbell.alexa.directive import ENDPOINT_ID_RE

if TYPE_CHECKING:
    from boto3.session import Session

log = logging.getLogger(__name__)

LOCAL_BUCKET = "alexa-doorbell-snapshots"  # created by the local cloud on start
PREFIX = "snapshots"
_EVENT_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
MIN_SIDE = 360  # Amazon's snapshot guideline: at least 360 pixels
MAX_EXPIRY = 604800  # SigV4 presigned URLs live at most 7 days
# JPEG start-of-frame markers (C0-CF except DHT C4, JPG C8, DAC CC) carry the size.
_SOF = {0xC0 + i for i in range(16)} - {0xC4, 0xC8, 0xCC}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class SnapshotError(Exception):
    """A snapshot that cannot be stored or read; the message says what to do."""


class LocalS3(Protocol):
    """Where the local cloud's S3 listens (``Settings.local``)."""

    @property
    def host(self) -> str: ...
    @property
    def tls_port(self) -> int: ...


class SnapshotSettings(Protocol):
    """What the store reads of the settings; ``config.Settings`` is one (this floor sits
    below the settings, so it names only what it uses)."""

    @property
    def snapshot_bucket(self) -> str | None: ...
    @property
    def snapshot_url_expiry(self) -> int: ...
    @property
    def region(self) -> str: ...
    @property
    def is_local(self) -> bool: ...
    @property
    def local(self) -> LocalS3: ...
    @property
    def ca_file(self) -> Path: ...
    def boto_session(self) -> Session: ...


class S3Client(Protocol):
    """The boto3 ``s3`` client calls the store makes."""

    def put_object(self, **kwargs: Any) -> dict[str, Any]: ...
    def get_object(self, **kwargs: Any) -> dict[str, Any]: ...
    def close(self) -> None: ...
    def generate_presigned_url(
        self, ClientMethod: str, Params: dict[str, Any], ExpiresIn: int
    ) -> str: ...


@dataclass(frozen=True)
class Snapshot:
    """One stored picture and the URL that reads it."""

    endpoint_id: str
    event_id: str
    bucket: str
    key: str
    url: str  # presigned GET: the event's frameImageUri
    expires_at: float  # unix seconds; the URL is refused after this
    content_type: str
    size: int
    width: int
    height: int


# -- pure helpers ------------------------------------------------------------------------
def image_info(data: bytes) -> tuple[str, int, int]:
    """``(content_type, width, height)`` of a JPEG or PNG; SnapshotError otherwise."""
    if data.startswith(PNG_SIGNATURE) and len(data) >= 24 and data[12:16] == b"IHDR":
        return "image/png", int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if not data.startswith(b"\xff\xd8\xff"):
        raise SnapshotError(
            "a snapshot must be a JPEG or PNG image (Alexa shows nothing else); "
            f"got {len(data)} bytes starting {data[:4].hex() or 'with nothing'}"
        )
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker in _SOF and pos + 9 <= len(data):
            height = int.from_bytes(data[pos + 5 : pos + 7], "big")
            width = int.from_bytes(data[pos + 7 : pos + 9], "big")
            return "image/jpeg", width, height
        if marker == 0xDA or length < 2:  # scan data before any frame header
            break
        pos += 2 + length
    raise SnapshotError("the JPEG has no frame header (truncated or damaged); send the whole file")


def snapshot_key(endpoint_id: str, event_id: str, taken_at: float, extension: str = "jpg") -> str:
    """``snapshots/<endpoint_id>/<UTC time>-<event_id>.<ext>``: per camera, in time order."""
    # Alexa's endpointId alphabet, matched whole: no "/" (one id is one key prefix), no newline.
    if not ENDPOINT_ID_RE.fullmatch(endpoint_id):
        raise SnapshotError(
            f"endpoint id {endpoint_id!r} is not an Alexa endpointId "
            "(1-256 of a-z A-Z 0-9 _ - = # ; : ? @ &)"
        )
    stamp = datetime.fromtimestamp(taken_at, UTC).strftime("%Y%m%dT%H%M%S.%f")[:-3] + "Z"
    safe_event = _EVENT_ID_UNSAFE.sub("_", event_id)[:128] or uuid.uuid4().hex
    return f"{PREFIX}/{endpoint_id}/{stamp}-{safe_event}.{extension}"


def bucket_name(settings: SnapshotSettings) -> str:
    """The snapshot bucket: ``snapshot_bucket``, or the local cloud's own."""
    if settings.snapshot_bucket:
        return settings.snapshot_bucket
    if settings.is_local:
        return LOCAL_BUCKET
    raise SnapshotError(
        "snapshot_bucket is not set: set ALEXA_DOORBELL_SNAPSHOT_BUCKET to the stack "
        "output SnapshotBucketName"
    )


def s3_client(
    session: Any, region: str, endpoint_url: str | None = None, verify: str | None = None
) -> S3Client:
    """A SigV4 ``s3`` client; path-style addressing when pointed at an endpoint_url."""
    from botocore.config import Config

    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path" if endpoint_url else "virtual"},
        connect_timeout=3,
        read_timeout=10,
        retries={"max_attempts": 3, "mode": "standard"},
    )
    return session.client(
        "s3", region_name=region, endpoint_url=endpoint_url, verify=verify, config=config
    )


# -- the store ---------------------------------------------------------------------------
class SnapshotStore:
    """Put pictures in the snapshot bucket and hand out presigned GET URLs."""

    def __init__(
        self,
        s3: S3Client,
        bucket: str,
        *,
        url_expiry: int = 3600,
        clock: Any = time.time,
    ) -> None:
        if not 1 <= url_expiry <= MAX_EXPIRY:
            raise SnapshotError(f"snapshot_url_expiry must be 1-{MAX_EXPIRY} s, not {url_expiry}")
        self.s3 = s3
        self.bucket = bucket
        self.url_expiry = url_expiry
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: SnapshotSettings) -> SnapshotStore:
        """The bucket of ``settings``: in AWS, or the local cloud's S3 on its TLS port."""
        if settings.is_local:
            local = settings.local
            client = s3_client(
                settings.boto_session(),
                settings.region,
                f"https://{local.host}:{local.tls_port}",
                verify=str(settings.ca_file),
            )
        else:
            client = s3_client(settings.boto_session(), settings.region)
        return cls(client, bucket_name(settings), url_expiry=settings.snapshot_url_expiry)

    def put(
        self,
        endpoint_id: str,
        image: bytes,
        *,
        event_id: str | None = None,
        taken_at: float | None = None,
    ) -> Snapshot:
        """Store ``image`` (JPEG or PNG) for the camera and presign a GET URL for it."""
        content_type, width, height = image_info(image)
        if min(width, height) < MIN_SIDE:
            log.warning(
                "snapshot for %s is %dx%d: Amazon asks for at least %d pixels a side",
                endpoint_id,
                width,
                height,
                MIN_SIDE,
            )
        event_id = event_id or uuid.uuid4().hex
        taken_at = self._clock() if taken_at is None else taken_at
        extension = "png" if content_type == "image/png" else "jpg"
        key = snapshot_key(endpoint_id, event_id, taken_at, extension)
        self._call(
            "PutObject",
            key,
            Bucket=self.bucket,
            Key=key,
            Body=image,
            ContentType=content_type,
            Metadata={"endpoint-id": endpoint_id, "event-id": event_id},
        )
        url, expires_at = self.presign(key)
        return Snapshot(
            endpoint_id,
            event_id,
            self.bucket,
            key,
            url,
            expires_at,
            content_type,
            len(image),
            width,
            height,
        )

    async def put_async(
        self,
        endpoint_id: str,
        image: bytes,
        *,
        event_id: str | None = None,
        taken_at: float | None = None,
    ) -> Snapshot:
        """:meth:`put` in a worker thread, for the camera agent's event loop."""
        if taken_at is None:
            taken_at = self._clock()  # the moment of the call, not of the upload
        return await asyncio.to_thread(
            self.put, endpoint_id, image, event_id=event_id, taken_at=taken_at
        )

    def presign(self, key: str, expiry: int | None = None) -> tuple[str, float]:
        """A fresh presigned GET URL for ``key`` and when it stops working."""
        expiry = self.url_expiry if expiry is None else expiry
        signed_at = self._clock()
        url = self.s3.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expiry
        )
        return url, signed_at + expiry

    def get(self, key: str) -> bytes:
        """The stored bytes of ``key`` (SnapshotError when there is none)."""
        reply = self._call("GetObject", key, Bucket=self.bucket, Key=key)
        return reply["Body"].read()

    def close(self) -> None:
        """Close the client's connections (an idle TLS one holds up a server's shutdown)."""
        self.s3.close()

    def __enter__(self) -> SnapshotStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, operation: str, key: str, **params: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        method = self.s3.put_object if operation == "PutObject" else self.s3.get_object
        try:
            return method(**params)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "?")
            raise SnapshotError(_advice(operation, self.bucket, key, code)) from exc
        except BotoCoreError as exc:
            raise SnapshotError(f"{operation} s3://{self.bucket}/{key} failed: {exc}") from exc


def _advice(operation: str, bucket: str, key: str, code: str) -> str:
    where = f"{operation} s3://{bucket}/{key} was refused ({code})"
    if code == "NoSuchBucket":
        return (
            f"{where}: no such bucket; set ALEXA_DOORBELL_SNAPSHOT_BUCKET to the stack "
            "output SnapshotBucketName"
        )
    if code in ("AccessDenied", "403"):
        return (
            f"{where}: attach the stack's CameraAgentPolicy (s3:PutObject and s3:GetObject "
            f"on {PREFIX}/*) to the camera's IAM user or role"
        )
    if code in ("NoSuchKey", "404"):
        return f"{where}: no such snapshot (expired after 30 days, or never stored)"
    return where
