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

    runner_in_process: bool | None = None
    """Whether ``lockgate serve`` executes approved runs itself. None: yes in the embedded default (no database
    URL, no NATS), no otherwise (``lockgate worker runner`` processes do it). False also keeps ``lockgate run
    --wait`` from starting a runner in its own process."""
    runner_runtime: str = "local"
    """How runners start dbt: ``local`` (cgroups + bubblewrap where available) or ``docker`` (Docker Engine API)."""
    runner_image: str = "lockgate-dbt-worker:latest"
    """The image of the ``docker`` runtime: dbt and the adapters, with ``dbt`` on its PATH."""
    docker_host: str | None = None
    """Docker Engine API URL (``unix:///run/docker.sock``...); None: the Docker SDK's default (DOCKER_HOST)."""
    runner_concurrency: int = 1
    """Runs one runner process executes at once."""
    runner_heartbeat_seconds: float = 5.0
    runner_lease_seconds: float = 20.0
    runner_timeout_seconds: float = 3600.0
    runner_memory_mb: int | None = None
    """Default memory limit of a run (an environment's ``memory_limit_mb`` overrides it)."""
    runner_cpus: float | None = None
    runner_workspace_dir: Path | None = None
    runner_metrics_port: int | None = None
    """``lockgate worker runner`` serves Prometheus metrics on this port (127.0.0.1) when set."""
    ui_dir: Path | None = None
    """The built web UI that ``serve`` serves at ``/``; None: ``ui/dist`` of the source tree (``make ui``)."""

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
    "LOCKGATE_RUNNER_IN_PROCESS": "runner_in_process",
    "LOCKGATE_RUNNER_RUNTIME": "runner_runtime",
    "LOCKGATE_RUNNER_IMAGE": "runner_image",
    "LOCKGATE_DOCKER_HOST": "docker_host",
    "LOCKGATE_RUNNER_CONCURRENCY": "runner_concurrency",
    "LOCKGATE_RUNNER_HEARTBEAT_SECONDS": "runner_heartbeat_seconds",
    "LOCKGATE_RUNNER_LEASE_SECONDS": "runner_lease_seconds",
    "LOCKGATE_RUNNER_TIMEOUT_SECONDS": "runner_timeout_seconds",
    "LOCKGATE_RUNNER_MEMORY_MB": "runner_memory_mb",
    "LOCKGATE_RUNNER_CPUS": "runner_cpus",
    "LOCKGATE_RUNNER_WORKSPACE_DIR": "runner_workspace_dir",
    "LOCKGATE_RUNNER_METRICS_PORT": "runner_metrics_port",
    "LOCKGATE_UI_DIR": "ui_dir",
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
