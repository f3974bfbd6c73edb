"""The local cloud's S3 and the snapshot store: real boto3, real HTTP(S), real SQLite."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import av
import boto3
import httpx
import numpy as np
import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from alexa_doorbell.amazon.snapshots import (
    LOCAL_BUCKET,
    SnapshotError,
    SnapshotStore,
    bucket_name,
    image_info,
    s3_client,
    snapshot_key,
)
from alexa_doorbell.camera.jpeg import encode_jpeg
from alexa_doorbell.camera.pattern import TestPattern
from alexa_doorbell.cloud import s3 as s3_emulator
from alexa_doorbell.cloud.server import CloudThread
from alexa_doorbell.cloud.tls import client_context
from alexa_doorbell.config import Settings


@pytest.fixture(scope="module")
def jpeg() -> bytes:
    """A 720p JPEG of the test pattern, as the camera would send."""
    frame = av.VideoFrame.from_ndarray(TestPattern(1280, 720).render(7), format="yuv420p")
    return encode_jpeg(frame)


_made: list[Any] = []


@pytest.fixture(autouse=True)
def _close_clients(make_cloud: Callable[..., CloudThread]) -> Iterator[None]:
    """Close the boto3 clients a test made before its clouds stop (after make_cloud's
    set-up, so before its teardown): an idle TLS connection holds up a cloud's stop."""
    yield
    while _made:
        _made.pop().close()


def client(settings: Settings, *, https: bool = False, **session_kw: str):
    local = settings.local
    if session_kw:
        session = boto3.session.Session(region_name=settings.region, **session_kw)
    else:
        session = settings.boto_session()
    if https:
        endpoint = f"https://{local.host}:{local.tls_port}"
        made = s3_client(session, settings.region, endpoint, verify=str(settings.ca_file))
    else:
        made = s3_client(session, settings.region, local.url)
    _made.append(made)
    return made


def store_for(settings: Settings) -> SnapshotStore:
    store = SnapshotStore.from_settings(settings)
    _made.append(store)
    return store


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    err = exc.value.response
    return err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Code"]


def xml_code(resp: httpx.Response) -> str:
    text = resp.text
    return text[text.index("<Code>") + 6 : text.index("</Code>")]


def https_get(settings: Settings, url: str, **kw: object) -> httpx.Response:
    with httpx.Client(verify=client_context(settings.ca_file)) as http:
        return http.get(url, **kw)  # type: ignore[arg-type]


def presign_at(
    settings: Settings, path: str, signed_at: dt.datetime, expires: int, *, tls: bool = True
) -> str:
    """A presigned GET URL signed at a chosen time (botocore's S3 query signer)."""
    local = settings.local
    base = f"https://{local.host}:{local.tls_port}" if tls else local.url
    request = AWSRequest(method="GET", url=base + path)
    creds = Credentials(local.aws_access_key_id, local.aws_secret_access_key.get_secret_value())
    signer = S3SigV4QueryAuth(creds, "s3", settings.region, expires=expires)
    request.context["timestamp"] = signed_at.strftime("%Y%m%dT%H%M%SZ")
    signer._modify_request_before_signing(request)
    canonical = signer.canonical_request(request)
    signer._inject_signature_to_request(
        request, signer.signature(signer.string_to_sign(request, canonical), request)
    )
    return request.url


def signed_put(
    settings: Settings,
    path: str,
    signed_body: bytes,
    *,
    sent_body: bytes | None = None,
    headers: dict[str, str] | None = None,
    signed_at: dt.datetime | None = None,
    region: str | None = None,
) -> httpx.Response:
    """A header-signed PUT over HTTP whose body may differ from the one signed."""
    local = settings.local
    request = AWSRequest(method="PUT", url=local.url + path, data=signed_body, headers=headers)
    creds = Credentials(local.aws_access_key_id, local.aws_secret_access_key.get_secret_value())
    signer = S3SigV4Auth(creds, "s3", region or settings.region)
    when = signed_at or dt.datetime.now(dt.UTC)
    request.context["timestamp"] = when.strftime("%Y%m%dT%H%M%SZ")
    signer._modify_request_before_signing(request)
    canonical = signer.canonical_request(request)
    signature = signer.signature(signer.string_to_sign(request, canonical), request)
    signer._inject_signature_to_request(request, signature)
    return httpx.put(
        local.url + path,
        content=signed_body if sent_body is None else sent_body,
        headers=dict(request.headers),
    )


# -- boto3 against the emulator ------------------------------------------------------------


@pytest.mark.parametrize("https", [False, True], ids=["http", "https-aws-chunked"])
def test_put_get_head_round_trip(local_cloud: Settings, jpeg: bytes, https: bool) -> None:
    s3 = client(local_cloud, https=https)
    key = "snapshots/front-door/a b+c é.jpg"  # encoded by boto3, signed as sent
    put = s3.put_object(
        Bucket=LOCAL_BUCKET,
        Key=key,
        Body=jpeg,
        ContentType="image/jpeg",
        Metadata={"event-id": "ev-1"},
    )
    assert put["ETag"] == f'"{hashlib.md5(jpeg).hexdigest()}"'
    # boto3 sends a CRC32 (a header over HTTP, an aws-chunked trailer over HTTPS)
    assert put["ChecksumCRC32"] == base64.b64encode(zlib.crc32(jpeg).to_bytes(4, "big")).decode()
    got = s3.get_object(Bucket=LOCAL_BUCKET, Key=key)
    assert got["Body"].read() == jpeg  # boto3 also checked the CRC32 it asked for
    assert got["ContentType"] == "image/jpeg"
    assert got["ContentLength"] == len(jpeg)
    assert got["Metadata"] == {"event-id": "ev-1"}
    assert got["ChecksumCRC32"] == put["ChecksumCRC32"]
    head = s3.head_object(Bucket=LOCAL_BUCKET, Key=key)
    assert (head["ContentLength"], head["ETag"]) == (len(jpeg), put["ETag"])


def test_unknown_key_and_bucket(local_cloud: Settings) -> None:
    s3 = client(local_cloud)
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=LOCAL_BUCKET, Key="snapshots/none.jpg")
    assert error_of(exc) == (404, "NoSuchKey")
    assert exc.value.response["Error"]["Key"] == "snapshots/none.jpg"
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=LOCAL_BUCKET, Key="snapshots/none.jpg")
    assert error_of(exc) == (404, "404")  # HEAD: status only, as S3 answers
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket="no-such-bucket", Key="k", Body=b"x")
    assert error_of(exc) == (404, "NoSuchBucket")
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket="Bad_Name", Key="k", Body=b"x")
    assert error_of(exc)[0] == 400
    # Bucket names match whole: a trailing newline is no bucket (botocore lets it through).
    for bad in ("other-home\n", "127.0.0.1"):
        with pytest.raises(ClientError) as exc:
            s3.create_bucket(Bucket=bad)
        assert error_of(exc) == (400, "InvalidBucketName"), bad


def test_buckets_are_isolated(local_cloud: Settings) -> None:
    s3 = client(local_cloud)
    s3.create_bucket(Bucket="other-home")
    with pytest.raises(ClientError) as exc:
        s3.create_bucket(Bucket="other-home")
    assert error_of(exc) == (409, "BucketAlreadyOwnedByYou")
    s3.head_bucket(Bucket="other-home")
    s3.put_object(Bucket=LOCAL_BUCKET, Key="snapshots/k.jpg", Body=b"ours")
    s3.put_object(Bucket="other-home", Key="snapshots/k.jpg", Body=b"theirs")
    s3.put_object(Bucket=LOCAL_BUCKET, Key="snapshots/only-ours.jpg", Body=b"x")
    assert s3.get_object(Bucket=LOCAL_BUCKET, Key="snapshots/k.jpg")["Body"].read() == b"ours"
    assert s3.get_object(Bucket="other-home", Key="snapshots/k.jpg")["Body"].read() == b"theirs"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="other-home", Key="snapshots/only-ours.jpg")
    assert error_of(exc) == (404, "NoSuchKey")
    # A URL for one bucket's object does not open the other bucket's.
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": LOCAL_BUCKET, "Key": "snapshots/k.jpg"}, ExpiresIn=60
    )
    moved = httpx.get(url.replace(f"/{LOCAL_BUCKET}/", "/other-home/"))
    assert (moved.status_code, xml_code(moved)) == (403, "SignatureDoesNotMatch")


def test_credentials_are_checked(local_cloud: Settings) -> None:
    wrong_secret = client(
        local_cloud,
        aws_access_key_id=local_cloud.local.aws_access_key_id,
        aws_secret_access_key="not-the-secret",
    )
    with pytest.raises(ClientError) as exc:
        wrong_secret.put_object(Bucket=LOCAL_BUCKET, Key="snapshots/x.jpg", Body=b"x")
    assert error_of(exc) == (403, "SignatureDoesNotMatch")
    with pytest.raises(ClientError) as exc:
        wrong_secret.get_object(Bucket=LOCAL_BUCKET, Key="snapshots/x.jpg")
    assert error_of(exc) == (403, "SignatureDoesNotMatch")
    unknown = client(
        local_cloud, aws_access_key_id="AKIANOBODY0000000000", aws_secret_access_key="x"
    )
    with pytest.raises(ClientError) as exc:
        unknown.put_object(Bucket=LOCAL_BUCKET, Key="snapshots/x.jpg", Body=b"x")
    assert error_of(exc) == (403, "InvalidAccessKeyId")
    # A request signed for another region gets S3's 400 naming the right one...
    wrong_region = signed_put(
        local_cloud, f"/{LOCAL_BUCKET}/snapshots/x.jpg", b"x", region="eu-west-1"
    )
    assert (wrong_region.status_code, xml_code(wrong_region)) == (
        400,
        "AuthorizationHeaderMalformed",
    )
    assert "<Region>us-east-1</Region>" in wrong_region.text
    # Nothing was written by any of them.
    with pytest.raises(ClientError) as exc:
        client(local_cloud).head_object(Bucket=LOCAL_BUCKET, Key="snapshots/x.jpg")
    assert error_of(exc) == (404, "404")
    # ...which boto3 reads to sign again for that region, as it does with S3.
    other_region = s3_client(local_cloud.boto_session(), "eu-west-1", local_cloud.local.url)
    _made.append(other_region)
    other_region.put_object(Bucket=LOCAL_BUCKET, Key="snapshots/x.jpg", Body=b"x")
    assert client(local_cloud).get_object(Bucket=LOCAL_BUCKET, Key="snapshots/x.jpg")


def test_anonymous_and_stale_requests_are_refused(local_cloud: Settings) -> None:
    client(local_cloud).put_object(Bucket=LOCAL_BUCKET, Key="snapshots/a.jpg", Body=b"x")
    anonymous = httpx.get(f"{local_cloud.local.url}/{LOCAL_BUCKET}/snapshots/a.jpg")
    assert (anonymous.status_code, xml_code(anonymous)) == (403, "AccessDenied")
    assert anonymous.headers["content-type"] == "application/xml"
    stale = signed_put(
        local_cloud,
        f"/{LOCAL_BUCKET}/snapshots/a.jpg",
        b"y",
        signed_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10),
    )
    assert (stale.status_code, xml_code(stale)) == (403, "RequestTimeTooSkewed")


def test_body_must_match_what_was_signed(local_cloud: Settings) -> None:
    path = f"/{LOCAL_BUCKET}/snapshots/b.jpg"
    ok = signed_put(local_cloud, path, b"signed bytes")
    assert ok.status_code == 200, ok.text
    swapped = signed_put(local_cloud, path, b"signed bytes", sent_body=b"other bytes!")
    assert (swapped.status_code, xml_code(swapped)) == (400, "XAmzContentSHA256Mismatch")
    bad_crc = signed_put(
        local_cloud, path, b"signed bytes", headers={"x-amz-checksum-crc32": "AAAAAA=="}
    )
    assert (bad_crc.status_code, xml_code(bad_crc)) == (400, "BadDigest")
    bad_md5 = signed_put(
        local_cloud,
        path,
        b"signed bytes",
        headers={"Content-MD5": base64.b64encode(hashlib.md5(b"x").digest()).decode()},
    )
    assert (bad_md5.status_code, xml_code(bad_md5)) == (400, "BadDigest")
    got = client(local_cloud).get_object(Bucket=LOCAL_BUCKET, Key="snapshots/b.jpg")
    assert got["Body"].read() == b"signed bytes"  # the refused ones changed nothing


# -- presigned GET with a plain HTTP client ------------------------------------------------


def test_presigned_get_over_https(local_cloud: Settings, jpeg: bytes) -> None:
    s3 = client(local_cloud, https=True)
    s3.put_object(Bucket=LOCAL_BUCKET, Key="snapshots/p.jpg", Body=jpeg, ContentType="image/jpeg")
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": LOCAL_BUCKET, "Key": "snapshots/p.jpg"}, ExpiresIn=600
    )
    assert url.startswith(f"https://127.0.0.1:{local_cloud.local.tls_port}/")
    resp = https_get(local_cloud, url, headers={"Accept": "image/jpeg, image/png"})
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "image/jpeg"
    assert resp.content == jpeg


def test_altered_presigned_urls_are_refused(local_cloud: Settings) -> None:
    s3 = client(local_cloud, https=True)
    s3.put_object(Bucket=LOCAL_BUCKET, Key="snapshots/q.jpg", Body=b"q")
    s3.put_object(Bucket=LOCAL_BUCKET, Key="snapshots/r.jpg", Body=b"r")
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": LOCAL_BUCKET, "Key": "snapshots/q.jpg"}, ExpiresIn=600
    )
    assert https_get(local_cloud, url).content == b"q"
    sig = url.rsplit("X-Amz-Signature=", 1)[1]
    flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    altered = {
        "other key": url.replace("snapshots/q.jpg", "snapshots/r.jpg"),
        "longer expiry": url.replace("X-Amz-Expires=600", "X-Amz-Expires=6000"),
        "signature": url.replace(sig, flipped),
        "other port": url.replace(
            f"https://127.0.0.1:{local_cloud.local.tls_port}", local_cloud.local.url
        ),
    }
    for what, bad in altered.items():
        resp = https_get(local_cloud, bad) if bad.startswith("https") else httpx.get(bad)
        assert (resp.status_code, xml_code(resp)) == (403, "SignatureDoesNotMatch"), what
    put = httpx.put(url, content=b"overwrite", verify=client_context(local_cloud.ca_file))
    assert (put.status_code, xml_code(put)) == (403, "SignatureDoesNotMatch")
    # Alexa sending a bearer token with the URL: S3 allows one auth mechanism only.
    both = https_get(local_cloud, url, headers={"Authorization": "Bearer Atza|token"})
    assert (both.status_code, xml_code(both)) == (400, "InvalidArgument")
    assert https_get(local_cloud, url).content == b"q"  # nothing was overwritten


def test_expired_presigned_url_is_refused(local_cloud: Settings) -> None:
    client(local_cloud).put_object(Bucket=LOCAL_BUCKET, Key="snapshots/old.jpg", Body=b"o")
    path = f"/{LOCAL_BUCKET}/snapshots/old.jpg"
    now = dt.datetime.now(dt.UTC)
    fresh = presign_at(local_cloud, path, now - dt.timedelta(seconds=30), 60)
    assert https_get(local_cloud, fresh).content == b"o"
    expired = presign_at(local_cloud, path, now - dt.timedelta(seconds=120), 60)
    resp = https_get(local_cloud, expired)
    assert (resp.status_code, xml_code(resp)) == (403, "AccessDenied")
    assert "Request has expired" in resp.text
    too_long = presign_at(local_cloud, path, now, 604801)
    resp = https_get(local_cloud, too_long)
    assert (resp.status_code, xml_code(resp)) == (400, "AuthorizationQueryParametersError")


def test_objects_survive_a_restart_and_expire_after_30_days(
    make_cloud: Callable[..., CloudThread], tmp_path: Path
) -> None:
    data = tmp_path / "persist"
    first = make_cloud(data)
    client(first.settings).put_object(Bucket=LOCAL_BUCKET, Key="snapshots/keep.jpg", Body=b"k")
    first.stop()
    second = make_cloud(data)
    s3 = client(second.settings)
    assert s3.get_object(Bucket=LOCAL_BUCKET, Key="snapshots/keep.jpg")["Body"].read() == b"k"
    assert second.cloud is not None
    emulator = second.cloud.s3
    assert emulator.apply_lifecycle(time.time() + 29 * 86400) == 0
    assert emulator.apply_lifecycle(time.time() + 31 * 86400) == 1
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=LOCAL_BUCKET, Key="snapshots/keep.jpg")
    assert error_of(exc) == (404, "NoSuchKey")


# -- pure parts ----------------------------------------------------------------------------


def test_aws_chunked_decoding() -> None:
    body = b"5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:abc=\r\n\r\n"
    assert s3_emulator.decode_aws_chunked(body) == (
        b"hello world",
        {"x-amz-checksum-crc32": "abc="},
    )
    for bad, code in [
        (b"5\r\nhel", "IncompleteBody"),
        (b"zz\r\nhello\r\n0\r\n\r\n", "InvalidChunkSizeError"),
        (b"5;chunk-signature=ab\r\nhello\r\n0\r\n\r\n", "NotImplemented"),
        (b"0\r\nno-colon\r\n\r\n", "MalformedTrailerError"),
    ]:
        with pytest.raises(s3_emulator.S3Error) as exc:
            s3_emulator.decode_aws_chunked(bad)
        assert exc.value.code == code, bad


def test_image_info_and_keys(jpeg: bytes) -> None:
    assert image_info(jpeg) == ("image/jpeg", 1280, 720)
    png = (
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + (640).to_bytes(4, "big") + (480).to_bytes(4, "big")
    )
    assert image_info(png) == ("image/png", 640, 480)
    for bad in (b"", b"GIF89a....", jpeg[:200]):
        with pytest.raises(SnapshotError):
            image_info(bad)
    when = dt.datetime(2026, 5, 4, 3, 2, 1, 500000, tzinfo=dt.UTC).timestamp()
    assert snapshot_key("front-door", "1718.5-ab/c", when) == (
        "snapshots/front-door/20260504T030201.500Z-1718.5-ab_c.jpg"
    )
    for bad_id in ("", "a/b", "x" * 257, "front-door\n"):
        with pytest.raises(SnapshotError):
            snapshot_key(bad_id, "e", when)


# -- the snapshot store --------------------------------------------------------------------


def test_snapshot_store_put_url_get(local_cloud: Settings, jpeg: bytes) -> None:
    store = store_for(local_cloud)
    assert store.bucket == bucket_name(local_cloud) == LOCAL_BUCKET
    before = time.time()
    snap = store.put("front-door", jpeg, event_id="frigate-1718.2-xyz")
    assert snap.key.startswith("snapshots/front-door/")
    assert snap.key.endswith("-frigate-1718.2-xyz.jpg")
    assert (snap.content_type, snap.width, snap.height, snap.size) == (
        "image/jpeg",
        1280,
        720,
        len(jpeg),
    )
    assert snap.url.startswith(f"https://127.0.0.1:{local_cloud.local.tls_port}/{LOCAL_BUCKET}/")
    assert before + 3600 - 1 <= snap.expires_at <= time.time() + 3600
    resp = https_get(local_cloud, snap.url)  # what Alexa does with frameImageUri
    assert resp.status_code == 200 and resp.content == jpeg
    assert resp.headers["content-type"] == "image/jpeg"
    assert store.get(snap.key) == jpeg
    url, expires_at = store.presign(snap.key, expiry=120)
    assert "X-Amz-Expires=120" in url and expires_at <= time.time() + 120
    assert https_get(local_cloud, url).content == jpeg


async def test_snapshot_store_from_the_event_loop(local_cloud: Settings, jpeg: bytes) -> None:
    store = store_for(local_cloud)
    snap = await store.put_async("front-door", jpeg, taken_at=1_700_000_000.25)
    assert "/20231114T221320.250Z-" in snap.key
    assert store.get(snap.key) == jpeg


def test_snapshot_store_errors_say_what_to_do(
    make_cloud: Callable[..., CloudThread], jpeg: bytes
) -> None:
    settings = make_cloud(snapshot_bucket="configured-bucket").settings
    store = store_for(settings)
    assert store.bucket == "configured-bucket"  # the local cloud made it on start
    assert store.get(store.put("front-door", jpeg).key) == jpeg
    with pytest.raises(SnapshotError, match="JPEG or PNG"):
        store.put("front-door", b"not an image")
    with pytest.raises(SnapshotError, match="endpointId"):
        store.put("front/door", jpeg)
    with pytest.raises(SnapshotError, match="no such snapshot"):
        store.get("snapshots/front-door/missing.jpg")
    stray = SnapshotStore(client(settings, https=True), "never-created")
    with pytest.raises(SnapshotError, match="ALEXA_DOORBELL_SNAPSHOT_BUCKET"):
        stray.put("front-door", jpeg)
    aws = Settings(cloud="aws", data_dir=settings.data_dir)
    with pytest.raises(SnapshotError, match="ALEXA_DOORBELL_SNAPSHOT_BUCKET"):
        bucket_name(aws)
    with pytest.raises(SnapshotError, match="snapshot_url_expiry"):
        SnapshotStore(client(settings), LOCAL_BUCKET, url_expiry=604801)


def test_snapshot_of_a_decoded_frame(local_cloud: Settings) -> None:
    rgb = np.zeros((481, 641, 3), np.uint8)
    rgb[:, :320] = (200, 40, 40)
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    data = encode_jpeg(frame, qscale=8)
    assert image_info(data) == ("image/jpeg", 640, 480)
    snap = store_for(local_cloud).put("front-door", data)
    with av.open(io.BytesIO(https_get(local_cloud, snap.url).content)) as container:
        decoded = next(container.decode(video=0))
    left, right = decoded.to_ndarray(format="rgb24")[240, [100, 500]]
    assert left[0] > 150 and right[0] < 50  # the red half is still on the left


def test_quote_roundtrip_of_keys_with_reserved_characters(local_cloud: Settings) -> None:
    s3 = client(local_cloud)
    key = "snapshots/door#1;a=b?c&d@e:f/x.jpg"
    s3.put_object(Bucket=LOCAL_BUCKET, Key=key, Body=b"reserved")
    raw = httpx.get(
        s3.generate_presigned_url(
            "get_object", Params={"Bucket": LOCAL_BUCKET, "Key": key}, ExpiresIn=60
        )
    )
    assert raw.content == b"reserved"
    assert quote(key, safe="/~") in str(raw.request.url)
