"""Configuration: environment variables, then an optional ``lockgate.toml``, then defaults.

With nothing configured Lockgate runs on the embedded default: an embedded PostgreSQL under
``LOCKGATE_HOME`` and the in-process feed instead of NATS (ADR 0003).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from services.shared.errors import ContractViolationError


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    home: Path = Path(".lockgate")
    database_url: str | None = None
    """None = embedded PostgreSQL under ``home``."""
    nats_url: str | None = None
    """None = the in-process feed; set = relay to and consume from NATS JetStream."""
    nats_stream: str = "LOCKGATE_EVENTS"
    nats_subject_prefix: str = "lockgate"
    host: str = "127.0.0.1"
    port: int = 8000
    default_tenant: str = "default"
    default_org: str = "default"
    dev_principal: bool = True
    """Accept requests without credentials as a local developer; only ever honoured on loopback."""
    log_level: str = "info"
    log_json: bool = True
    max_upload_bytes: int = 1024 * 1024 * 1024
    """Largest artifact upload accepted (413 above it); uploads stream to disk, so this bounds disk, not RAM."""
    object_store: str = "file"
    """Where artifacts live: ``file`` (files under ``<home>/objects``), ``file:///abs/dir`` or ``s3://bucket``."""
    s3_endpoint: str | None = None
    """``host:port`` or ``http(s)://host:port`` of an S3-compatible server; None = AWS S3."""
    s3_access_key: str | None = None
    """Secret: never logged; ``__repr__`` masks it."""
    s3_secret_key: str | None = None
    """Secret: never logged; ``__repr__`` masks it."""
    s3_region: str = "us-east-1"
    s3_secure: bool = True
    """TLS to the S3 endpoint; a scheme in ``s3_endpoint`` overrides it."""

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    def __repr__(self) -> str:
        """Mask the secret fields: a Settings object ends up in reprs (the Runtime dataclass, tracebacks with
        locals, debug logs), and msgspec's default repr would print every field verbatim."""
        return f"Settings({', '.join(f'{name}={value!r}' for name, value in self.__rich_repr__())})"

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        """The fields with secrets masked; Rich pretty-printing calls this instead of ``__repr__``."""
        return [
            (name, _MASKED if name in _SECRET_FIELDS and getattr(self, name) is not None else getattr(self, name))
            for name in self.__struct_fields__
        ]


class _Masked:
    def __repr__(self) -> str:
        return "'***'"


_MASKED = _Masked()
_SECRET_FIELDS = frozenset({"s3_access_key", "s3_secret_key"})


_ENV = {
    "LOCKGATE_HOME": "home",
    "LOCKGATE_DATABASE_URL": "database_url",
    "LOCKGATE_NATS_URL": "nats_url",
    "LOCKGATE_NATS_STREAM": "nats_stream",
    "LOCKGATE_NATS_SUBJECT_PREFIX": "nats_subject_prefix",
    "LOCKGATE_HOST": "host",
    "LOCKGATE_PORT": "port",
    "LOCKGATE_DEFAULT_TENANT": "default_tenant",
    "LOCKGATE_DEV_PRINCIPAL": "dev_principal",
    "LOCKGATE_LOG_LEVEL": "log_level",
    "LOCKGATE_LOG_JSON": "log_json",
    "LOCKGATE_MAX_UPLOAD_BYTES": "max_upload_bytes",
    "LOCKGATE_OBJECT_STORE": "object_store",
    "LOCKGATE_S3_ENDPOINT": "s3_endpoint",
    "LOCKGATE_S3_ACCESS_KEY": "s3_access_key",
    "LOCKGATE_S3_SECRET_KEY": "s3_secret_key",
    "LOCKGATE_S3_REGION": "s3_region",
    "LOCKGATE_S3_SECURE": "s3_secure",
}


def load_settings(env: Mapping[str, str] | None = None, config_file: Path | None = None) -> Settings:
    """Merge ``lockgate.toml`` (``LOCKGATE_CONFIG`` or ./lockgate.toml) under the environment."""
    environ = os.environ if env is None else env
    values: dict[str, object] = {}
    path = config_file or Path(environ.get("LOCKGATE_CONFIG", "lockgate.toml"))
    if path.is_file():
        try:
            values.update(tomllib.loads(path.read_text(encoding="utf-8")).get("lockgate", {}))
        except tomllib.TOMLDecodeError as exc:
            raise ContractViolationError(f"{path}: {exc}") from exc
    for var, field in _ENV.items():
        if environ.get(var):
            values[field] = environ[var]
    try:
        return msgspec.convert(values, Settings, strict=False, dec_hook=_decode_path)
    except msgspec.ValidationError as exc:
        raise ContractViolationError(f"invalid configuration: {exc}") from exc


def _decode_path(kind: type, value: object) -> object:
    if kind is Path and isinstance(value, str):
        return Path(value)
    raise NotImplementedError
