"""S3's wire format, as the emulator speaks it: XML errors, bucket names, request bodies.

``S3Error`` is a refused request with S3's status, code and fields; ``error_response``
is its XML document (no body for HEAD, as S3 sends). ``decode_aws_chunked`` reads the
``aws-chunked`` body boto3 streams over HTTPS and ``verify_checksums`` checks its
``x-amz-checksum-*`` values and ``Content-MD5``.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
import zlib
from collections.abc import Callable, Mapping
from xml.sax.saxutils import escape

from starlette.responses import Response

# Matched whole (.fullmatch): with "^...$", .match lets a trailing newline through.
BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
IPV4_LIKE_RE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
# Checksums S3 accepts, with how to compute the ones the stdlib can; the rest are refused.
CHECKSUMS: dict[str, Callable[[bytes], bytes] | None] = {
    "crc32": lambda b: zlib.crc32(b).to_bytes(4, "big"),
    "sha1": lambda b: hashlib.sha1(b).digest(),
    "sha256": lambda b: hashlib.sha256(b).digest(),
    "crc32c": None,
    "crc64nvme": None,
}


class S3Error(Exception):
    """A refused S3 request: status, S3 error code, message and extra XML fields."""

    def __init__(self, status: int, code: str, message: str, **fields: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields


def error_response(exc: S3Error, *, head: bool = False) -> Response:
    """S3's error document (none for HEAD: S3 sends the status alone)."""
    request_id = uuid.uuid4().hex[:16].upper()
    headers = {
        "x-amz-request-id": request_id,
        "x-amz-id-2": base64.b64encode(uuid.uuid4().bytes).decode(),
    }
    if head:
        return Response(b"", exc.status, headers=headers)
    extra = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in exc.fields.items())
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{exc.code}</Code><Message>{escape(exc.message)}</Message>{extra}"
        f"<RequestId>{request_id}</RequestId></Error>"
    )
    return Response(body.encode(), exc.status, media_type="application/xml", headers=headers)


def no_such_bucket(bucket: str) -> S3Error:
    return S3Error(404, "NoSuchBucket", "The specified bucket does not exist", BucketName=bucket)


def not_implemented(what: str) -> S3Error:
    return S3Error(
        501,
        "NotImplemented",
        f"A header or query you provided implies functionality that is not implemented ({what})",
    )


def check_bucket_name(name: str) -> None:
    if not BUCKET_RE.fullmatch(name) or ".." in name or IPV4_LIKE_RE.fullmatch(name):
        raise S3Error(
            400, "InvalidBucketName", "The specified bucket is not valid.", BucketName=name
        )


def decode_aws_chunked(body: bytes) -> tuple[bytes, dict[str, str]]:
    """The payload and trailers of an ``aws-chunked`` body without chunk signatures.

    ``<hex size>\\r\\n<data>\\r\\n`` … ``0\\r\\n`` then ``name:value\\r\\n`` trailer lines
    and an empty line (what botocore's AwsChunkedWrapper writes).
    """
    out = bytearray()
    pos = 0
    while True:
        end = body.find(b"\r\n", pos)
        if end < 0:
            raise S3Error(400, "IncompleteBody", "The request body ended inside a chunk header.")
        size_field = body[pos:end].split(b";", 1)
        if len(size_field) > 1:  # ";chunk-signature=": signed streaming, not supported here
            raise not_implemented("signed aws-chunked payload")
        try:
            size = int(size_field[0], 16)
        except ValueError:
            raise S3Error(400, "InvalidChunkSizeError", "Invalid chunk size.") from None
        pos = end + 2
        if size == 0:
            break
        chunk = body[pos : pos + size]
        if len(chunk) != size or body[pos + size : pos + size + 2] != b"\r\n":
            raise S3Error(400, "IncompleteBody", "A chunk is shorter than its declared size.")
        out += chunk
        pos += size + 2
    trailers: dict[str, str] = {}
    for line in body[pos:].split(b"\r\n"):
        if line:
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep:
                raise S3Error(400, "MalformedTrailerError", "A trailer line has no ':'.")
            trailers[name.strip().lower()] = value.strip()
    return bytes(out), trailers


def verify_checksums(payload: bytes, given: Mapping[str, str]) -> tuple[str, str] | None:
    """Check ``x-amz-checksum-*`` values (headers or trailers) and ``content-md5``.

    Returns the (algorithm, base64 value) to store, or None.
    """
    md5 = given.get("content-md5")
    if md5 is not None and base64.b64encode(hashlib.md5(payload).digest()).decode() != md5:
        raise S3Error(
            400, "BadDigest", "The Content-MD5 you specified did not match what we received."
        )
    found = None
    for algorithm, compute in CHECKSUMS.items():
        value = given.get(f"x-amz-checksum-{algorithm}")
        if value is None:
            continue
        if compute is None:
            raise S3Error(
                400,
                "InvalidRequest",
                f"The local cloud cannot check {algorithm.upper()} checksums; use CRC32, SHA1 "
                "or SHA256 (boto3's default is CRC32).",
            )
        if base64.b64encode(compute(payload)).decode() != value:
            raise S3Error(
                400,
                "BadDigest",
                f"The {algorithm.upper()} you specified did not match the calculated checksum.",
            )
        found = (algorithm, value)
    return found
