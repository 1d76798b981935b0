"""Objects in an S3 bucket (AWS S3, MinIO, Ceph RGW...) through the ``minio`` SDK.

The SDK is synchronous; ``store.py`` runs every call here in a worker thread. Its client is thread-safe (one
urllib3 pool). Multipart upload of large bodies is the SDK's: it reads one part at a time (5 MiB for anything
under ~48 GiB) with at most ``_PARALLEL_PARTS`` in flight, so memory stays bounded by a few parts.

Timeouts and retries are ours, not the SDK's defaults (five minutes to connect, five retries): an unreachable
server must surface quickly as ``InfrastructureError`` rather than hang a request.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import BinaryIO, cast
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.error import InvalidResponseError, S3Error, ServerError

from services.shared.errors import ContractViolationError, InfrastructureError, NotFoundError
from services.shared.objectstore.blobs import BlobStat, Readable
from services.shared.objectstore.keys import ObjectKey
from services.shared.objectstore.port import DEFAULT_CONTENT_TYPE
from services.shared.objectstore.store import BlobObjectStore

_ABSENT = frozenset({"NoSuchKey", "NoSuchBucket", "NoSuchObject"})
_PARALLEL_PARTS = 2
_CONNECT_TIMEOUT = 5.0
_READ_TIMEOUT = 60.0
_AWS_ENDPOINT = "s3.amazonaws.com"


class S3ObjectStore(BlobObjectStore):
    def __init__(
        self,
        *,
        bucket: str,
        endpoint: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str = "us-east-1",
        secure: bool = True,
    ) -> None:
        super().__init__(S3Blobs(bucket, endpoint, access_key, secret_key, region, secure=secure))


class _S3Blob:
    def __init__(self, response: urllib3.BaseHTTPResponse, stat: BlobStat, errors: _Errors) -> None:
        self._response = response
        self.stat = stat
        self._errors = errors

    def read(self, size: int = -1, /) -> bytes:
        with self._errors("read"):
            return self._response.read(None if size < 0 else size, decode_content=False)


class _Errors:
    """Translates the SDK's and urllib3's exceptions into Lockgate's, naming the server but never credentials."""

    def __init__(self, location: str, key: ObjectKey | None = None) -> None:
        self._location = location
        self._key = key

    @contextlib.contextmanager
    def __call__(self, action: str) -> Iterator[None]:
        what = f"{action} {self._key}" if self._key is not None else action
        try:
            yield
        except S3Error as exc:
            if exc.code in _ABSENT:
                raise NotFoundError(f"object {self._key} not found", key=str(self._key)) from exc
            raise InfrastructureError(
                f"object store {self._location}: {what} failed: {exc.code}: {exc.message}"
            ) from exc
        except (ServerError, InvalidResponseError) as exc:
            raise InfrastructureError(f"object store {self._location}: {what} failed: {exc}") from exc
        except urllib3.exceptions.HTTPError as exc:
            reason = getattr(exc, "reason", None) or exc
            raise InfrastructureError(f"object store {self._location} is unreachable ({what}): {reason}") from exc


class S3Blobs:
    def __init__(
        self,
        bucket: str,
        endpoint: str | None,
        access_key: str | None,
        secret_key: str | None,
        region: str,
        *,
        secure: bool,
    ) -> None:
        host, secure = _split_endpoint(endpoint or _AWS_ENDPOINT, secure=secure)
        if (access_key is None) != (secret_key is None):
            raise ContractViolationError("set both the S3 access key and secret key, or neither (anonymous access)")
        self._bucket = bucket
        self._region = region
        self._location = f"s3://{bucket} at {'https' if secure else 'http'}://{host}"
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=_CONNECT_TIMEOUT, read=_READ_TIMEOUT),
            maxsize=10,
            cert_reqs="CERT_REQUIRED",
            retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
        )
        try:
            self._client = Minio(
                host, access_key=access_key, secret_key=secret_key, secure=secure, region=region, http_client=http
            )
        except ValueError as exc:
            raise ContractViolationError(f"invalid S3 endpoint {host!r}: {exc}") from exc
        self._bucket_ready = False
        self._bucket_lock = threading.Lock()

    @property
    def location(self) -> str:
        return self._location

    def stat(self, key: ObjectKey) -> BlobStat | None:
        try:
            with self._errors(key)("stat"):
                info = self._client.stat_object(self._bucket, str(key))
        except NotFoundError:
            return None
        return BlobStat(info.size or 0, info.content_type or DEFAULT_CONTENT_TYPE)

    @contextlib.contextmanager
    def open(self, key: ObjectKey) -> Iterator[_S3Blob]:
        errors = self._errors(key)
        with errors("read"):
            response = self._client.get_object(self._bucket, str(key))
        try:
            stat = BlobStat(
                int(response.headers.get("Content-Length", "0")),
                response.headers.get("Content-Type", DEFAULT_CONTENT_TYPE),
            )
            yield _S3Blob(response, stat, errors)
        finally:
            response.close()
            response.release_conn()

    def write(self, key: ObjectKey, source: Readable, size: int, content_type: str) -> None:
        self._ensure_bucket()
        with self._errors(key)("write"):
            self._client.put_object(
                self._bucket,
                str(key),
                cast("BinaryIO", source),  # the SDK only calls read(n)
                length=size,
                content_type=content_type,
                num_parallel_uploads=_PARALLEL_PARTS,
            )

    def remove(self, key: ObjectKey) -> None:
        with self._errors(key)("remove"):
            self._client.remove_object(self._bucket, str(key))

    def _ensure_bucket(self) -> None:
        """Create the bucket on first write (not at start: opening the store must not need the network)."""
        if self._bucket_ready:
            return
        with self._bucket_lock, self._errors()(f"create bucket {self._bucket}"):
            if not self._client.bucket_exists(self._bucket):
                try:
                    self._client.make_bucket(self._bucket, location=self._region)
                except S3Error as exc:
                    if exc.code != "BucketAlreadyOwnedByYou":  # a concurrent creator won the race
                        raise
            self._bucket_ready = True

    def _errors(self, key: ObjectKey | None = None) -> _Errors:
        return _Errors(self._location, key)


def _split_endpoint(endpoint: str, *, secure: bool) -> tuple[str, bool]:
    """``host[:port]`` for the SDK, and TLS or not: a scheme in the endpoint decides over ``secure``."""
    if "@" in endpoint:  # do not echo it: the part before '@' would be credentials
        raise ContractViolationError("the S3 endpoint must not carry credentials; set the S3 access and secret keys")
    if "://" not in endpoint:
        return endpoint, secure
    parts = urlsplit(endpoint)
    if parts.scheme not in {"http", "https"} or not parts.netloc or parts.path not in {"", "/"} or parts.query:
        raise ContractViolationError(f"invalid S3 endpoint {endpoint!r}: expected host:port or http(s)://host:port")
    return parts.netloc, parts.scheme == "https"
