"""S3-compatible document storage (moto locally, MinIO or AWS S3 in production)."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import quote

import boto3
from botocore.client import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from core.errors import PayloadTooLarge, ServiceUnavailable
from core.settings import Settings

log = logging.getLogger(__name__)


def make_s3_client(settings: Settings) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        aws_access_key_id=settings.s3_access_key_id,
        aws_secret_access_key=settings.s3_secret_access_key,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=30,
        ),
    )


def ensure_bucket(client: Any, bucket: str) -> None:
    """Creates the bucket when it is missing, with S3 Object Lock (hence versioning) where the
    store offers it, so that kept evidence can be pinned by version and locked (see
    `keep_copy` and `lock_version`). An existing bucket is left as its owner configured it."""
    try:
        client.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
        try:
            client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
        except ClientError as refused:
            if _error_code(refused) in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                return
            log.info("bucket %s created without object lock (%s)", bucket, _error_code(refused))
            client.create_bucket(Bucket=bucket)


def document_key(appeal_id: str, document_id: str) -> str:
    # Server-generated; the client's file name never becomes part of a key.
    return f"appeals/{appeal_id}/{document_id}"


# Accepted evidence lives apart from the upload keys: no presigned POST is ever made for a key
# under this prefix (a store that enforces POST policies refuses any other key; one that does
# not is caught by the version pin and the SHA-256 re-check when the copy is served).
EVIDENCE_PREFIX = "evidence/"


def evidence_key(appeal_id: str, document_id: str) -> str:
    return f"{EVIDENCE_PREFIX}{appeal_id}/{document_id}"


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class ByteSource(Protocol):
    """Anything with a blocking `read(n)`: a file, a socket stream, a pipe from the event loop."""

    def read(self, n: int = -1, /) -> bytes: ...


class _LimitedReader:
    """Counts and hashes bytes as boto3 reads them, refusing to go past the limit."""

    def __init__(self, source: ByteSource, limit: int) -> None:
        self._source = source
        self._limit = limit
        self.size = 0
        self.sha256 = hashlib.sha256()
        self.head = b""

    def read(self, n: int = -1) -> bytes:
        chunk = self._source.read(n if n and n > 0 else 1024 * 1024)
        self.size += len(chunk)
        if self.size > self._limit:
            raise PayloadTooLarge(
                f"The file is larger than the {self._limit // (1024 * 1024)} MiB limit.",
                code="document_too_large",
                max_bytes=self._limit,
            )
        if len(self.head) < 8192:
            self.head += chunk[: 8192 - len(self.head)]
        self.sha256.update(chunk)
        return chunk


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    sha256: str
    head: bytes


def put_stream(
    client: Any,
    settings: Settings,
    *,
    key: str,
    stream: ByteSource,
    content_type: str,
    max_bytes: int,
) -> StoredObject:
    """Streams to S3 (multipart for large bodies) with the size limit enforced while reading."""
    reader = _LimitedReader(stream, max_bytes)
    extra: dict[str, str] = {"ContentType": content_type}
    if settings.s3_server_side_encryption:
        extra["ServerSideEncryption"] = settings.s3_server_side_encryption
    try:
        client.upload_fileobj(reader, settings.s3_bucket, key, ExtraArgs=extra)
    except (EndpointConnectionError, BotoCoreError) as exc:
        if isinstance(exc.__context__, PayloadTooLarge):
            raise exc.__context__ from None
        raise ServiceUnavailable(
            "The document store is unreachable; nothing was stored, please retry.",
            code="document_store_unavailable",
        ) from exc
    return StoredObject(key=key, size=reader.size, sha256=reader.sha256.hexdigest(), head=reader.head)


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    content_type: str | None
    last_modified: datetime | None = None
    server_side_encryption: str | None = None


def _no_such_object(exc: ClientError) -> bool:
    return _error_code(exc) in ("404", "NoSuchKey", "NotFound", "NoSuchVersion")


def head_object(client: Any, bucket: str, key: str) -> ObjectInfo | None:
    try:
        response = client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if _no_such_object(exc):
            return None
        raise
    return ObjectInfo(
        size=int(response["ContentLength"]),
        content_type=response.get("ContentType"),
        last_modified=response.get("LastModified"),
        server_side_encryption=response.get("ServerSideEncryption"),
    )


@dataclass(frozen=True)
class ReadObject:
    """An object read whole, or (`data` None) only its size when that is over the limit."""

    size: int
    data: bytes | None


def read_object(
    client: Any, bucket: str, key: str, *, max_bytes: int, version_id: str | None = None
) -> ReadObject | None:
    """The object's bytes in one GET (of `version_id` when given), or None when there is no
    such object or version. The size comes from the response's headers, so an oversize object
    is never read: its stream is closed."""
    params = {"Bucket": bucket, "Key": key}
    if version_id is not None:
        params["VersionId"] = version_id
    try:
        response = client.get_object(**params)
    except ClientError as exc:
        if _no_such_object(exc):
            return None
        raise
    body, size = response["Body"], int(response["ContentLength"])
    try:
        if size > max_bytes:
            return ReadObject(size=size, data=None)
        # One byte past the limit: a store that under-reported the size is caught here too.
        data = body.read(max_bytes + 1)
    finally:
        body.close()
    return ReadObject(size=len(data), data=data)


@dataclass(frozen=True)
class KeptCopy:
    """A server-side copy: its key, and its version where the bucket is versioned."""

    key: str
    version_id: str | None


def keep_copy(client: Any, settings: Settings, *, source: str, target: str) -> KeptCopy | None:
    """Copies `source` to `target` inside the bucket without the bytes passing through here
    (encrypted when the settings ask for it); None when there is no such source. On a versioned
    bucket the copy's version id pins exactly these bytes, whatever is written to `target`
    later."""
    extra: dict[str, str] = {}
    if settings.s3_server_side_encryption:
        extra["ServerSideEncryption"] = settings.s3_server_side_encryption
    try:
        response = client.copy_object(
            Bucket=settings.s3_bucket,
            Key=target,
            CopySource={"Bucket": settings.s3_bucket, "Key": source},
            MetadataDirective="COPY",
            **extra,
        )
    except ClientError as exc:
        if _no_such_object(exc):
            return None
        raise
    version = response.get("VersionId")
    return KeptCopy(key=target, version_id=version if version and version != "null" else None)


def lock_version(
    client: Any, settings: Settings, copy: KeptCopy, *, until: datetime, mode: str = "GOVERNANCE"
) -> bool:
    """Protects one version from deletion and overwrite until `until` (S3 Object Lock). False,
    and nothing done, where the bucket has no object lock or the copy no version."""
    if copy.version_id is None:
        return False
    try:
        client.put_object_retention(
            Bucket=settings.s3_bucket,
            Key=copy.key,
            VersionId=copy.version_id,
            Retention={"Mode": mode, "RetainUntilDate": until},
        )
    except ClientError as exc:
        if _error_code(exc) in ("InvalidRequest", "ObjectLockConfigurationNotFoundError", "NotImplemented"):
            log.info(
                "no object lock on bucket %s (%s): %s kept unlocked",
                settings.s3_bucket,
                _error_code(exc),
                copy.key,
            )
            return False
        raise
    return True


def delete_other_versions(client: Any, bucket: str, key: str, *, keep: str | None) -> int:
    """Deletes every version at `key` but `keep` (nothing where the bucket is not versioned)."""
    if not keep or keep == "null":
        return 0
    try:
        versions = [
            entry["VersionId"]
            for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key)
            for entry in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
            if entry["Key"] == key and entry["VersionId"] != keep
        ]
    except ClientError as exc:
        if _error_code(exc) in ("NotImplemented", "MethodNotAllowed", "AccessDenied"):
            return 0
        raise
    for version in versions:
        client.delete_object(Bucket=bucket, Key=key, VersionId=version)
    return len(versions)


def delete_all_versions(client: Any, bucket: str, key: str) -> int:
    """Deletes the object at `key` for good: every version and delete marker (on a versioned
    bucket a plain delete only hides the bytes; on another the listing gives the object as
    version "null"). Returns how many went; nothing at `key` is not an error, and no delete
    marker is left behind. A locked version raises (AccessDenied). A store that cannot list
    versions, or a user not allowed to (s3:ListBucketVersions), gets a plain delete."""
    try:
        versions = [
            entry["VersionId"]
            for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key)
            for entry in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
            if entry["Key"] == key  # the prefix also matches longer keys
        ]
    except ClientError as exc:
        if _error_code(exc) not in ("NotImplemented", "MethodNotAllowed", "AccessDenied"):
            raise
        client.delete_object(Bucket=bucket, Key=key)
        return 1
    for version in versions:
        client.delete_object(Bucket=bucket, Key=key, VersionId=version)
    return len(versions)


def presigned_post(
    client: Any,
    settings: Settings,
    *,
    key: str,
    content_type: str,
    max_bytes: int,
    expires: timedelta,
    min_bytes: int = 1,
) -> dict[str, Any]:
    """A browser-ready POST policy for exactly one object: this key, this Content-Type, a size
    between `min_bytes` and `max_bytes` (the uploads pass the declared size as both), and
    server-side encryption when the settings ask for it.

    Stores that do not enforce POST policies (moto) accept anything, so the object is
    re-checked after upload; the policy is what protects production.
    """
    fields: dict[str, str] = {"Content-Type": content_type}
    conditions: list[Any] = [
        {"Content-Type": content_type},
        ["content-length-range", min_bytes, max_bytes],
    ]
    if settings.s3_server_side_encryption:
        fields["x-amz-server-side-encryption"] = settings.s3_server_side_encryption
        conditions.append({"x-amz-server-side-encryption": settings.s3_server_side_encryption})
    # boto3 adds the exact `bucket` and `key` conditions itself.
    post = client.generate_presigned_post(
        Bucket=settings.s3_bucket,
        Key=key,
        Fields=fields,
        Conditions=conditions,
        ExpiresIn=max(1, int(expires.total_seconds())),
    )
    return {"url": post["url"], "fields": dict(post["fields"])}


def content_disposition(filename: str, disposition: str = "attachment") -> str:
    """RFC 6266: an ASCII `filename` fallback plus `filename*` (RFC 8187) for other names."""
    # No path parts, quotes, backslashes or control characters reach the header.
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable() and ch not in '"') or "document"
    fallback = name.encode("ascii", "replace").decode("ascii").replace("?", "_")
    if fallback == name:
        return f'{disposition}; filename="{name}"'
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


# What a browser may show inline from a preview link: types it renders without running
# anything of the file's own (never HTML, SVG or XML).
INLINE_PREVIEW_TYPES = frozenset({"application/pdf", "image/png", "image/jpeg"})


def presigned_get(
    client: Any,
    settings: Settings,
    *,
    key: str,
    filename: str,
    expires: timedelta,
    inline_content_type: str | None = None,
    version_id: str | None = None,
) -> str:
    """A short-lived download link that makes browsers save the file, never render it inline
    (an uploaded HTML or SVG must not run in anyone's session).

    With `inline_content_type` (one of INLINE_PREVIEW_TYPES) it is a preview link instead: the
    store serves the file as that type with an `inline` disposition, so the browser shows it.
    With `version_id` the link serves that version only."""
    params = {
        "Bucket": settings.s3_bucket,
        "Key": key,
        "ResponseContentDisposition": content_disposition(filename),
    }
    if version_id is not None:
        params["VersionId"] = version_id
    if inline_content_type is not None:
        if inline_content_type not in INLINE_PREVIEW_TYPES:
            raise ValueError(f"{inline_content_type} is not shown inline")
        params["ResponseContentDisposition"] = content_disposition(filename, "inline")
        params["ResponseContentType"] = inline_content_type
    url: str = client.generate_presigned_url(
        "get_object", Params=params, ExpiresIn=max(1, int(expires.total_seconds()))
    )
    return url
