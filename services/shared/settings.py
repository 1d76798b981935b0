"""Configuration: environment variables, then an optional ``lockgate.toml``, then defaults.

With nothing configured Lockgate runs on the embedded default: an embedded PostgreSQL under
``LOCKGATE_HOME`` and the in-process feed instead of NATS (ADR 0003).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path

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

    @property
    def embedded(self) -> bool:
        return self.database_url is None


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
