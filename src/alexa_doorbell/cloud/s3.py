"""S3 emulator: the object calls boto3 makes for snapshots, with S3's wire format.

Path-style addressing (``/<bucket>/<key>``, boto3 with ``endpoint_url`` and
``s3={"addressing_style": "path"}``) on both of the local cloud's ports, so a
presigned URL made against the TLS port is ``https://`` as Alexa wants it.

- ``PutObject``, ``GetObject``, ``HeadObject``; ``CreateBucket``, ``HeadBucket``.
- SigV4 as S3 checks it (the shared checker in ``sigv4.py``): header auth whose
  ``x-amz-content-sha256`` is the body's hash, ``UNSIGNED-PAYLOAD`` or
  ``STREAMING-UNSIGNED-PAYLOAD-TRAILER`` (the ``aws-chunked`` body boto3 sends
  over HTTPS, its CRC32 in the trailer); presigned query auth; the credential
  scope's region must be the cloud's.
- Errors are S3's XML ``<Error><Code>…`` with S3's codes and statuses
  (``NoSuchKey``, ``NoSuchBucket``, ``AccessDenied``, ``SignatureDoesNotMatch``,
  ``InvalidAccessKeyId``, ``RequestTimeTooSkewed``, ``BadDigest``, …); HEAD
  errors carry no body, as S3's do.
- Objects live in ``cloud_dir/s3.sqlite3`` (``s3_store.py``); objects older than
  ``LIFECYCLE_DAYS`` are deleted on start, as the bucket's lifecycle rule does in AWS.
- The wire format's pure parts (errors, bodies, checksums) are in ``s3_wire.py``.
"""

from __future__ import annotations

import hashlib
import re
import time
from email.utils import formatdate
from pathlib import Path
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from alexa_doorbell.cloud.s3_store import ObjectStore, StoredObject
from alexa_doorbell.cloud.s3_wire import (
    S3Error,
    check_bucket_name,
    decode_aws_chunked,
    error_response,
    no_such_bucket,
    not_implemented,
    verify_checksums,
)
from alexa_doorbell.cloud.sigv4 import (
    SigV4Error,
    header_lists,
    verify_header_auth,
    verify_presigned,
)
from alexa_doorbell.config import Settings

__all__ = ["S3Emulator", "S3Error", "check_bucket_name", "decode_aws_chunked", "error_response"]

SERVICE = "s3"
LIFECYCLE_DAYS = 30  # deploy/template.yaml expires snapshots after as many days
MAX_OBJECT_BYTES = 64 * 1024 * 1024  # far below S3's 5 GB; snapshots are a few hundred kB
MAX_KEY_BYTES = 1024
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
SHA256_RE = re.compile(r"[0-9a-f]{64}")
# Query parameters that name a sub-resource (?acl, ?tagging, ?uploads...) select
# operations the emulator does not have; these others do not.
PLAIN_QUERY = {"x-id", "versionId"}


# -- the emulator ------------------------------------------------------------------------
class S3Emulator:
    """Path-style S3 for the local cloud; mount ``bucket`` and ``object`` (see ROUTES)."""

    def __init__(self, settings: Settings, path: Path | str | None = None) -> None:
        self.settings = settings
        self.objects = ObjectStore(path if path is not None else settings.cloud_dir / "s3.sqlite3")

    @property
    def secrets(self) -> dict[str, str]:
        local = self.settings.local
        return {local.aws_access_key_id: local.aws_secret_access_key.get_secret_value()}

    def ensure_bucket(self, name: str) -> None:
        check_bucket_name(name)
        self.objects.add_bucket(name)

    def apply_lifecycle(self, now: float | None = None) -> int:
        return self.objects.expire((now or time.time()) - LIFECYCLE_DAYS * 86400)

    def close(self) -> None:
        self.objects.close()

    # -- auth --------------------------------------------------------------------------
    def _authenticate(self, request: Request, body: bytes) -> bool:
        """Check the request's SigV4; True when it was presigned (query auth)."""
        raw_path = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
        query = request.scope.get("query_string", b"").decode("latin-1")
        headers = header_lists(request.headers.raw)
        names = {k for k, _ in parse_qsl(query, keep_blank_values=True)}
        presigned = bool(names & {"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature"})
        if presigned and "authorization" in headers:
            raise S3Error(
                400,
                "InvalidArgument",
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
                "Signature query string parameter or the Authorization header should be specified",
                ArgumentName="Authorization",
            )
        if not presigned and "authorization" not in headers:
            raise S3Error(403, "AccessDenied", "Access Denied")  # anonymous, private bucket
        try:
            if presigned:
                verified, _ = verify_presigned(
                    method=request.method,
                    path=raw_path,
                    query=query,
                    headers=headers,
                    secrets=self.secrets,
                    service=SERVICE,
                )
            else:
                if "x-amz-content-sha256" not in headers:
                    raise S3Error(
                        400,
                        "InvalidRequest",
                        "Missing required header for this request: x-amz-content-sha256",
                    )
                verified = verify_header_auth(
                    method=request.method,
                    path=raw_path,
                    query=query,
                    headers=headers,
                    body=body,
                    secrets=self.secrets,
                    service=SERVICE,
                )
        except SigV4Error as exc:
            raise _s3_auth_error(exc, presigned) from None
        if verified.region != self.settings.region:
            code = (
                "AuthorizationQueryParametersError" if presigned else "AuthorizationHeaderMalformed"
            )
            raise S3Error(
                400,
                code,
                f"The authorization is malformed; the region '{verified.region}' is wrong; "
                f"expecting '{self.settings.region}'",
                Region=self.settings.region,
            )
        return presigned

    def _payload(
        self, request: Request, body: bytes, presigned: bool
    ) -> tuple[bytes, tuple[str, str] | None]:
        """The object's bytes, checked against x-amz-content-sha256 and any checksum,
        and the checksum to store."""
        claimed = request.headers.get("x-amz-content-sha256", UNSIGNED_PAYLOAD if presigned else "")
        given = {k.lower(): v for k, v in request.headers.items()}
        if claimed == STREAMING_UNSIGNED_TRAILER:
            if "aws-chunked" not in request.headers.get("content-encoding", ""):
                raise S3Error(
                    400,
                    "InvalidArgument",
                    "aws-chunked payload needs Content-Encoding: aws-chunked",
                )
            payload, trailers = decode_aws_chunked(body)
            declared = request.headers.get("x-amz-decoded-content-length")
            if declared is not None and declared != str(len(payload)):
                raise S3Error(
                    400,
                    "IncompleteBody",
                    "You did not provide the number of bytes specified by the "
                    "X-Amz-Decoded-Content-Length header.",
                )
            announced = {
                t.strip().lower()
                for t in request.headers.get("x-amz-trailer", "").split(",")
                if t.strip()
            }
            if set(trailers) - announced:
                raise S3Error(
                    400,
                    "MalformedTrailerError",
                    "A trailer was sent that X-Amz-Trailer did not announce.",
                )
            given.update(trailers)
        elif claimed.startswith("STREAMING-"):
            raise not_implemented(f"x-amz-content-sha256: {claimed}")
        elif claimed == UNSIGNED_PAYLOAD:
            payload = body
        elif SHA256_RE.fullmatch(claimed):
            if hashlib.sha256(body).hexdigest() != claimed:
                raise S3Error(
                    400,
                    "XAmzContentSHA256Mismatch",
                    "The provided 'x-amz-content-sha256' header does not match what was computed.",
                )
            payload = body
        else:
            raise S3Error(
                400,
                "InvalidArgument",
                "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, "
                "STREAMING-UNSIGNED-PAYLOAD-TRAILER or a valid sha256 value.",
                ArgumentName="x-amz-content-sha256",
            )
        if len(payload) > MAX_OBJECT_BYTES:
            raise S3Error(
                400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size"
            )
        return payload, verify_checksums(payload, given)

    # -- handlers ----------------------------------------------------------------------
    async def bucket(self, request: Request) -> Response:
        """``/<bucket>``: CreateBucket (PUT) and HeadBucket (HEAD)."""
        head = request.method == "HEAD"
        bucket = request.path_params["bucket"]
        try:
            body = await request.body()
            self._authenticate(request, body)
            _refuse_subresources(request)
            check_bucket_name(bucket)
            if request.method == "PUT":
                _check_location(body, self.settings.region)
                if not self.objects.add_bucket(bucket):
                    raise S3Error(
                        409,
                        "BucketAlreadyOwnedByYou",
                        "Your previous request to create the named bucket succeeded and you "
                        "already own it.",
                        BucketName=bucket,
                    )
                return Response(b"", 200, headers={"Location": f"/{bucket}"})
            if request.method == "HEAD":
                if not self.objects.has_bucket(bucket):
                    raise no_such_bucket(bucket)
                return Response(b"", 200, headers={"x-amz-bucket-region": self.settings.region})
            raise not_implemented(f"{request.method} on a bucket (ListObjects)")
        except S3Error as exc:
            return error_response(exc, head=head)

    async def object(self, request: Request) -> Response:
        """``/<bucket>/<key>``: PutObject, GetObject and HeadObject."""
        head = request.method == "HEAD"
        bucket, key = request.path_params["bucket"], request.path_params["key"]
        if not key:
            return await self.bucket(request)
        try:
            body = await request.body()
            presigned = self._authenticate(request, body)
            _refuse_subresources(request)
            check_bucket_name(bucket)
            if not self.objects.has_bucket(bucket):
                raise no_such_bucket(bucket)
            if len(key.encode()) > MAX_KEY_BYTES:
                raise S3Error(400, "KeyTooLongError", "Your key is too long", Key=key[:64])
            if request.method == "PUT":
                return self._put(request, bucket, key, body, presigned)
            obj = self.objects.get(bucket, key)
            if obj is None:
                raise S3Error(404, "NoSuchKey", "The specified key does not exist.", Key=key)
            return self._object_response(request, obj, head)
        except S3Error as exc:
            return error_response(exc, head=head)

    def _put(
        self, request: Request, bucket: str, key: str, body: bytes, presigned: bool
    ) -> Response:
        if request.headers.get("x-amz-copy-source"):
            raise not_implemented("CopyObject")
        payload, checksum = self._payload(request, body, presigned)
        etag = f'"{hashlib.md5(payload).hexdigest()}"'
        metadata = {
            k.lower(): v for k, v in request.headers.items() if k.lower().startswith("x-amz-meta-")
        }
        self.objects.put(
            StoredObject(
                bucket,
                key,
                payload,
                request.headers.get("content-type") or "binary/octet-stream",
                etag,
                time.time(),
                checksum[0] if checksum else None,
                checksum[1] if checksum else None,
                metadata,
            )
        )
        headers = {"ETag": etag}
        if checksum:
            headers[f"x-amz-checksum-{checksum[0]}"] = checksum[1]
        return Response(b"", 200, headers=headers)

    @staticmethod
    def _object_response(request: Request, obj: StoredObject, head: bool) -> Response:
        headers = {
            "ETag": obj.etag,
            "Last-Modified": formatdate(obj.last_modified, usegmt=True),
            "Accept-Ranges": "bytes",
            "Content-Length": str(len(obj.body)),
            **obj.metadata,
        }
        # S3 returns the stored checksum when asked (boto3 asks and checks it).
        if obj.checksum and request.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED":
            headers[f"x-amz-checksum-{obj.checksum_algorithm}"] = obj.checksum
            headers["x-amz-checksum-type"] = "FULL_OBJECT"
        return Response(
            b"" if head else obj.body, 200, media_type=obj.content_type, headers=headers
        )


def _s3_auth_error(exc: SigV4Error, presigned: bool) -> S3Error:
    """The SigV4 checker's refusal in S3's words."""
    if exc.reason == "missing":
        return S3Error(403, "AccessDenied", "Access Denied")
    if exc.reason == "unknown_key":
        return S3Error(
            403,
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.",
        )
    if exc.reason == "skew":
        return S3Error(
            403,
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
        )
    if exc.reason == "expired":
        return S3Error(403, "AccessDenied", "Request has expired")
    if exc.reason in ("malformed", "scope"):
        code = "AuthorizationQueryParametersError" if presigned else "AuthorizationHeaderMalformed"
        return S3Error(400, code, exc.message)
    return S3Error(
        403,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
    )


def _refuse_subresources(request: Request) -> None:
    for name in request.query_params:
        if name not in PLAIN_QUERY and not name.startswith(("X-Amz-", "x-amz-")):
            raise not_implemented(f"?{name}")


def _check_location(body: bytes, region: str) -> None:
    """CreateBucket's optional LocationConstraint must name the cloud's region."""
    match = re.search(rb"<LocationConstraint>([^<]*)</LocationConstraint>", body)
    wanted = match.group(1).decode() if match else "us-east-1"
    if (wanted or "us-east-1") != region:
        raise S3Error(
            400,
            "IllegalLocationConstraintException",
            f"The {wanted} location constraint is incompatible for the region specific "
            f"endpoint this request was sent to ({region}).",
        )
