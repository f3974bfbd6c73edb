"""SigV4 verification for the local cloud, as AWS's front door does it.

The signature is recomputed with botocore's own signer over the request as
received (method, raw path, raw query, the signed headers, the body) and
compared in constant time. Errors carry AWS's status, error type and message
(as KVS words them) and a ``reason`` that other services map to their own codes:
S3 says ``SignatureDoesNotMatch`` where KVS says ``InvalidSignatureException``.
S3 requests (``service="s3"``) are signed over the path exactly as sent; every
other service's path is normalised and encoded once more, as botocore signs them.
"""

from __future__ import annotations

import hmac
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import unquote

from botocore.auth import EMPTY_SHA256_HASH, UNSIGNED_PAYLOAD, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = 300  # seconds: AWS refuses header-signed requests older (or newer) than 5 minutes
MAX_PRESIGN_EXPIRES = 604800
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)


# Why a request was refused, whatever the service calls it.
Reason = Literal[
    "missing",  # no signature at all
    "malformed",  # an Authorization header or query parameters that do not parse
    "unknown_key",  # an access key nobody issued
    "scope",  # the credential scope names another service or day
    "skew",  # a header-signed request too old or too new
    "expired",  # a presigned URL past its X-Amz-Expires
    "mismatch",  # the signature does not match the request
]


class SigV4Error(Exception):
    """A refused request: HTTP status, AWS error type and message, and why."""

    def __init__(
        self, status: int, error_type: str, message: str, reason: Reason = "mismatch"
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.reason: Reason = reason


@dataclass(frozen=True)
class Verified:
    access_key: str
    region: str


class _Signer(SigV4Auth):
    """botocore's signer with the payload hash fixed (presigned URLs carry no body)."""

    def __init__(self, credentials: Credentials, service: str, region: str, payload: str | None):
        super().__init__(credentials, service, region)
        self._payload = payload

    def payload(self, request: AWSRequest) -> str:
        return self._payload if self._payload is not None else super().payload(request)

    def _normalize_url_path(self, path: str) -> str:
        # S3 signs the path as sent (botocore's S3SigV4Auth); the rest normalise it.
        return path if self._service_name == "s3" else super()._normalize_url_path(path)


def _parse_amz_date(value: str) -> float:
    try:
        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise SigV4Error(
            400,
            "IncompleteSignatureException",
            f"Date must be in ISO-8601 format: {value}",
            "malformed",
        ) from None


def _parse_scope(credential: str, service: str) -> tuple[str, str, str]:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise SigV4Error(
            400,
            "IncompleteSignatureException",
            f"Credential must have exactly 5 slash-delimited elements, e.g. "
            f"keyid/date/region/service/term, got '{credential}'",
            "malformed",
        )
    key, day, region, svc, _ = parts
    if svc != service:
        raise SigV4Error(
            403,
            "InvalidSignatureException",
            f"Credential should be scoped to correct service: '{service}'.",
            "scope",
        )
    return key, day, region


def _secret_for(key: str, secrets: Mapping[str, str]) -> str:
    secret = secrets.get(key)
    if secret is None:
        raise SigV4Error(
            403,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
            "unknown_key",
        )
    return secret


def _recompute(
    *,
    method: str,
    host: str,
    path: str,
    query: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    key: str,
    secret: str,
    region: str,
    service: str,
    amz_date: str,
    payload: str | None,
) -> str:
    url = f"http://{host}{path}" + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, data=body)
    for name, value in headers:
        request.headers[name] = value
    request.context["timestamp"] = amz_date
    signer = _Signer(Credentials(key, secret), service, region, payload)
    canonical = signer.canonical_request(request)
    return signer.signature(signer.string_to_sign(request, canonical), request)


def _signed_header_values(
    names: list[str], headers: Mapping[str, list[str]], host: str
) -> list[tuple[str, str]]:
    out = []
    for name in names:
        values = headers.get(name)
        if values is None:
            if name == "host":
                values = [host]
            else:
                raise SigV4Error(403, "InvalidSignatureException", SIGNATURE_MISMATCH)
        out.extend((name, v) for v in values)
    return out


def verify_header_auth(
    *,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, list[str]],
    body: bytes,
    secrets: Mapping[str, str],
    service: str = "kinesisvideo",
    now: float | None = None,
) -> Verified:
    """Check an ``Authorization: AWS4-HMAC-SHA256 ...`` request.

    ``headers`` maps lower-case names to every value received; ``path`` and
    ``query`` are exactly as sent on the wire (still percent-encoded).
    """
    auth = (headers.get("authorization") or [""])[0]
    if not auth:
        raise SigV4Error(
            403, "MissingAuthenticationTokenException", "Missing Authentication Token", "missing"
        )
    algorithm, _, rest = auth.partition(" ")
    if algorithm != ALGORITHM:
        raise SigV4Error(
            400,
            "IncompleteSignatureException",
            f"Unsupported AWS 'algorithm': '{algorithm}'",
            "malformed",
        )
    fields: dict[str, str] = {}
    for item in rest.split(","):
        name, _, value = item.strip().partition("=")
        fields[name] = value
    missing = [f for f in ("Credential", "SignedHeaders", "Signature") if not fields.get(f)]
    if missing:
        raise SigV4Error(
            400,
            "IncompleteSignatureException",
            f"Authorization header requires '{missing[0]}' parameter. Authorization={auth[:40]}...",
            "malformed",
        )
    key, day, region = _parse_scope(fields["Credential"], service)
    secret = _secret_for(key, secrets)
    amz_date = (headers.get("x-amz-date") or [""])[0]
    if not amz_date:
        raise SigV4Error(
            400,
            "IncompleteSignatureException",
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
            "malformed",
        )
    signed_at = _parse_amz_date(amz_date)
    now = time.time() if now is None else now
    if abs(now - signed_at) > MAX_SKEW:
        stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")
        raise SigV4Error(
            403,
            "InvalidSignatureException",
            f"Signature expired: {amz_date} is now earlier than {stamp} ({stamp} - 5 min.)"
            if signed_at < now
            else f"Signature not yet current: {amz_date} is still later than {stamp} "
            f"({stamp} + 5 min.)",
            "skew",
        )
    if amz_date[:8] != day:
        raise SigV4Error(
            403,
            "InvalidSignatureException",
            f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{day}' != '{amz_date[:8]}', from '{amz_date}'.",
            "scope",
        )
    host = (headers.get("host") or [""])[0]
    names = fields["SignedHeaders"].split(";")
    expected = _recompute(
        method=method,
        host=host,
        path=path,
        query=query,
        headers=_signed_header_values(names, headers, host),
        body=body,
        key=key,
        secret=secret,
        region=region,
        service=service,
        amz_date=amz_date,
        payload=None,
    )
    if not hmac.compare_digest(expected, fields["Signature"]):
        raise SigV4Error(403, "InvalidSignatureException", SIGNATURE_MISMATCH)
    return Verified(key, region)


def verify_presigned(
    *,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, list[str]],
    secrets: Mapping[str, str],
    service: str = "kinesisvideo",
    now: float | None = None,
) -> tuple[Verified, dict[str, str]]:
    """Check a SigV4 presigned URL (query auth); return the decoded query parameters too."""
    pairs = [p.partition("=") for p in query.split("&") if p]
    params = {unquote(k): unquote(v) for k, _, v in pairs}
    required = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Signature")
    if not all(params.get(r) for r in required):
        raise SigV4Error(
            403, "MissingAuthenticationTokenException", "Missing Authentication Token", "missing"
        )
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise SigV4Error(
            400,
            "IncompleteSignatureException",
            f"Unsupported AWS 'algorithm': '{params['X-Amz-Algorithm']}'",
            "malformed",
        )
    key, day, region = _parse_scope(params["X-Amz-Credential"], service)
    secret = _secret_for(key, secrets)
    amz_date = params["X-Amz-Date"]
    signed_at = _parse_amz_date(amz_date)
    try:
        expires = int(params.get("X-Amz-Expires", "0"))
    except ValueError:
        expires = -1
    if not 0 < expires <= MAX_PRESIGN_EXPIRES:
        raise SigV4Error(
            400,
            "AuthorizationQueryParametersError",
            "X-Amz-Expires must be non-negative and less than a week (in seconds); 604800",
            "malformed",
        )
    now = time.time() if now is None else now
    if now > signed_at + expires:
        raise SigV4Error(403, "AccessDeniedException", "Request has expired", "expired")
    if signed_at - now > MAX_SKEW:
        raise SigV4Error(403, "InvalidSignatureException", "Signature not yet current", "skew")
    if amz_date[:8] != day:
        raise SigV4Error(403, "InvalidSignatureException", SIGNATURE_MISMATCH, "scope")
    host = (headers.get("host") or [""])[0]
    names = (params.get("X-Amz-SignedHeaders") or "host").split(";")
    unsigned_query = "&".join(
        f"{k}={v}" if sep else k for k, sep, v in pairs if k != "X-Amz-Signature"
    )
    signed_headers = _signed_header_values(names, headers, host)
    # Clients hash an empty body for presigned WebSocket URLs; accept UNSIGNED-PAYLOAD too.
    for payload in (EMPTY_SHA256_HASH, UNSIGNED_PAYLOAD):
        expected = _recompute(
            method=method,
            host=host,
            path=path,
            query=unsigned_query,
            headers=signed_headers,
            body=b"",
            key=key,
            secret=secret,
            region=region,
            service=service,
            amz_date=amz_date,
            payload=payload,
        )
        if hmac.compare_digest(expected, params["X-Amz-Signature"]):
            return Verified(key, region), params
    raise SigV4Error(403, "InvalidSignatureException", SIGNATURE_MISMATCH)


def header_lists(raw: list[tuple[bytes, bytes]]) -> dict[str, list[str]]:
    """An ASGI request's raw headers as the verifiers take them: lower-case name -> values."""
    out: dict[str, list[str]] = defaultdict(list)
    for k, v in raw:
        out[k.decode("latin-1").lower()].append(v.decode("latin-1"))
    return dict(out)
