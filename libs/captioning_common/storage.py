"""S3-compatible object storage through boto3, endpoint and retries from settings."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from captioning_common.settings import S3Settings


MAX_POOL_CONNECTIONS = 64


def s3_client(settings: S3Settings):
    """A boto3 S3 client for the configured endpoint (path-style, SigV4, standard retries)."""
    return boto3.client(
        "s3",
        endpoint_url=settings.endpoint_url,
        region_name=settings.region,
        aws_access_key_id=settings.access_key_id,
        aws_secret_access_key=settings.secret_access_key.get_secret_value(),
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": settings.max_attempts, "mode": "standard"},
            connect_timeout=5,
            read_timeout=30,
            # botocore keeps 10 connections by default and closes every extra one after its call;
            # the services' thread pools run more calls than that at once
            max_pool_connections=MAX_POOL_CONNECTIONS,
        ),
    )


# 400s that concern the request's credentials, not its key: the deployment is wrong, not the message.
_CREDENTIAL_ERRORS = frozenset({"AuthorizationHeaderMalformed", "InvalidToken", "ExpiredToken", "InvalidAccessKeyId"})
_READ_CHUNK = 1024 * 1024
# How the store refuses a conditional write whose condition no longer holds.
_WRITE_CONFLICTS = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})


class ObjectUnreadable(KeyError):
    """A key the store refuses for good (an invalid object name): retrying cannot help."""

    def __init__(self, key: str, cause: str) -> None:
        super().__init__(key)
        self.cause = cause


class ObjectTooLarge(KeyError):
    """An object larger than the reader accepts: retrying cannot help."""

    def __init__(self, key: str, size: int, limit: int) -> None:
        super().__init__(key)
        self.size = size
        self.limit = limit


def read_failure(bucket: str, error: KeyError) -> tuple[str, str]:
    """(dead-letter code, message) of a ``get`` that failed for good.

    ``object_missing``, ``object_unreadable`` or ``object_too_large``.
    """
    key = error.args[0]
    if isinstance(error, ObjectTooLarge):
        return "object_too_large", f"s3://{bucket}/{key} has {error.size} bytes; the limit is {error.limit}"
    if isinstance(error, ObjectUnreadable):
        return "object_unreadable", f"s3://{bucket}/{key} cannot be read: {error.cause}"
    return "object_missing", f"no object s3://{bucket}/{key}"


def _permanent(key: str, exc: ClientError) -> KeyError | None:
    """The KeyError a failed read maps to for good, or None when retrying may help."""
    code = exc.response["Error"]["Code"]
    if code in ("NoSuchKey", "404"):
        return KeyError(key)
    if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 400 and code not in _CREDENTIAL_ERRORS:
        return ObjectUnreadable(key, code)  # about the key itself, not the request's credentials
    return None


def _read_at_most(key: str, body, max_bytes: int) -> bytes:
    """The whole body, or ObjectTooLarge as soon as it yields more than ``max_bytes``."""
    chunks, total = [], 0
    while chunk := body.read(min(_READ_CHUNK, max_bytes + 1 - total)):
        chunks.append(chunk)
        total += len(chunk)
        if total > max_bytes:
            raise ObjectTooLarge(key, total, max_bytes)
    return b"".join(chunks)


@dataclass(frozen=True)
class ObjectInfo:
    """Metadata of a stored object."""

    key: str
    size: int
    etag: str
    content_type: str | None = None


class ObjectStore:
    """The bucket of one deployment: originals, caption records, the search index."""

    def __init__(self, settings: S3Settings, client=None) -> None:
        self.settings = settings
        self.bucket = settings.bucket
        self.client = client or s3_client(settings)

    def reachable(self) -> bool:
        """True when the bucket answers (a readiness check); raises when it does not."""
        self.client.head_bucket(Bucket=self.bucket)
        return True

    def ensure_bucket(self) -> bool:
        """Create the bucket when missing; True when it was created."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
            return False
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("404", "NoSuchBucket", "NotFound"):
                raise
        self.client.create_bucket(Bucket=self.bucket)
        return True

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream", metadata: dict[str, str] | None = None) -> str:
        """Store bytes under ``key``; returns the ETag."""
        response = self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, Metadata=metadata or {})
        return response["ETag"].strip('"')

    def put_if(self, key: str, data: bytes, version: str, content_type: str = "application/octet-stream") -> str | None:
        """Store bytes under ``key`` only if its object is still at ``version`` (an ETag; "": still
        absent), atomically in the store; the new ETag, or None when the condition no longer held."""
        condition = {"IfMatch": f'"{version}"'} if version else {"IfNoneMatch": "*"}
        try:
            response = self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, **condition)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in _WRITE_CONFLICTS:
                return None
            raise
        return response["ETag"].strip('"')

    def create(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> bool:
        """Store bytes under ``key`` only if nothing is there (atomic in the store); False when something was."""
        return self.put_if(key, data, "", content_type) is not None

    def get(self, key: str, max_bytes: int | None = None) -> bytes:
        """The bytes under ``key``, at most ``max_bytes`` of them when given.

        KeyError when there is no such object; ObjectUnreadable (a KeyError) when the
        store rejects the key itself (400, e.g. an invalid name); ObjectTooLarge (a
        KeyError) when the object, as announced or as streamed, exceeds ``max_bytes``
        (its body is not read beyond that). Everything else, access and signature
        errors included, propagates: it is transient or a deployment problem, and
        must not dead-letter the message.
        """
        return self._get(key, max_bytes)[0]

    def get_versioned(self, key: str, max_bytes: int) -> tuple[bytes, str] | None:
        """(the bytes under ``key``, their version for ``put_if``), or None when there is no such
        object; the other errors as ``get``'s."""
        try:
            return self._get(key, max_bytes)
        except (ObjectUnreadable, ObjectTooLarge):
            raise
        except KeyError:
            return None

    def _get(self, key: str, max_bytes: int | None) -> tuple[bytes, str]:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if (error := _permanent(key, exc)) is None:
                raise
            raise error from exc
        body, version = response["Body"], response["ETag"].strip('"')
        try:
            if max_bytes is None:
                return body.read(), version
            size = response.get("ContentLength")
            if size is not None and size > max_bytes:
                raise ObjectTooLarge(key, size, max_bytes)
            return _read_at_most(key, body, max_bytes), version
        finally:
            body.close()

    def head(self, key: str) -> ObjectInfo | None:
        """Metadata of ``key``, or None when there is no such object.

        ObjectUnreadable when the store rejects the key itself, as ``get`` does.
        """
        try:
            response = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return None
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 400:
                self._raise_why_refused(key)
            raise
        return ObjectInfo(key, response["ContentLength"], response["ETag"].strip('"'), response.get("ContentType"))

    def _raise_why_refused(self, key: str) -> None:
        """A HEAD answer has no body to name its error: ask again with a one-byte GET that has one."""
        try:
            self.client.get_object(Bucket=self.bucket, Key=key, Range="bytes=0-0")["Body"].close()
        except ClientError as exc:
            if isinstance(error := _permanent(key, exc), ObjectUnreadable):
                raise error from exc

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object under ``prefix``, following pagination."""
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield ObjectInfo(item["Key"], item["Size"], item["ETag"].strip('"'))

    def delete(self, key: str) -> None:
        """Remove ``key`` (no error when it is absent)."""
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def presigned_get_url(self, key: str, expires_s: int | None = None) -> str:
        """A SigV4 presigned GET URL for ``key``."""
        return self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": key},
            ExpiresIn=expires_s or self.settings.presign_expiry_s,
        )
