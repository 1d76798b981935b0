"""Secret values for a run, from this runner's own environment or files under ``LOCKGATE_HOME``.

An environment never holds a secret: it references one as ``SecretRef(secret_id, fingerprint)``, where the
fingerprint is ``sha256:<hex>`` of the value (``services.tenancy.rules.check_secrets``). The runner that
executes the run looks the value up where it runs, in this order:

1. the variable ``LOCKGATE_SECRET_<ID>`` (the id upper-cased, every character but letters and digits turned
   into ``_``: ``vault:kv/dbt/prod`` -> ``LOCKGATE_SECRET_VAULT_KV_DBT_PROD``);
2. the file ``<home>/secrets/<secret_id>`` (an id with ``/`` names a file in a sub-folder), readable by its
   owner only, like an SSH key; one trailing newline is ignored (editors add it).

The value must hash to the fingerprint: a runner never hands dbt a credential other than the one the
environment was configured with. Errors name the secret id, never the value.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Final

from services.shared.errors import ContractViolationError

ENV_PREFIX: Final = "LOCKGATE_SECRET_"
FINGERPRINT_ALGORITHM: Final = "sha256"
_NOT_ALPHANUMERIC: Final = re.compile(r"[^A-Za-z0-9]")
_MAX_SECRET_BYTES: Final = 1 << 20
"""A secret file larger than this is not a secret (a misplaced dump); refuse rather than load it."""


class SecretError(ContractViolationError):
    """A secret an environment references is unknown to this runner, unreadable, or not the value its fingerprint
    says. The message names the secret id only."""

    code = "secret_unavailable"

    def __init__(self, message: str, *, secret_id: str) -> None:
        super().__init__(message, secret_id=secret_id)
        self.secret_id = secret_id


def fingerprint(value: str) -> str:
    """The fingerprint an environment stores for ``value``: ``sha256:<hex of its UTF-8 bytes>``."""
    return f"{FINGERPRINT_ALGORITHM}:{hashlib.sha256(value.encode()).hexdigest()}"


def env_var_name(secret_id: str) -> str:
    """The environment variable that holds ``secret_id`` on a runner."""
    return ENV_PREFIX + _NOT_ALPHANUMERIC.sub("_", secret_id.upper())


class LocalSecrets:
    """``SecretResolver`` over this process's environment and ``<home>/secrets/``."""

    def __init__(self, home: Path, environ: Mapping[str, str]) -> None:
        self._directory = home / "secrets"
        self._environ = environ

    def resolve(self, secret_id: str, fingerprint: str) -> str:
        value = self._environ.get(env_var_name(secret_id))
        if value is None:
            value = self._read_file(secret_id)
        _verify(secret_id, value, fingerprint)
        return value

    def _read_file(self, secret_id: str) -> str:
        relative = _relative_path(secret_id)
        path = self._directory / relative
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise SecretError(
                f"secret {secret_id!r} is unknown to this runner: set {env_var_name(secret_id)} or create "
                f"secrets/{relative.as_posix()} under LOCKGATE_HOME",
                secret_id=secret_id,
            ) from None
        except OSError as exc:
            raise SecretError(
                f"secret {secret_id!r}: its file cannot be opened ({exc.strerror})", secret_id=secret_id
            ) from None
        try:
            # fstat of the opened file, not a stat of the path: the mode checked is the one of the file read.
            status = os.fstat(fd)
            if not stat.S_ISREG(status.st_mode):
                raise SecretError(f"secret {secret_id!r}: its path is not a regular file", secret_id=secret_id)
            if status.st_mode & 0o077:
                raise SecretError(
                    f"secret {secret_id!r}: its file is accessible by group or others "
                    f"(mode {stat.S_IMODE(status.st_mode):04o}); make it readable by its owner only (chmod 600)",
                    secret_id=secret_id,
                )
            content = os.read(fd, _MAX_SECRET_BYTES + 1)
        finally:
            os.close(fd)
        if len(content) > _MAX_SECRET_BYTES:
            raise SecretError(f"secret {secret_id!r}: its file is larger than 1 MiB", secret_id=secret_id)
        try:
            text = content.decode()
        except UnicodeDecodeError:
            raise SecretError(f"secret {secret_id!r}: its file is not UTF-8 text", secret_id=secret_id) from None
        return text.removesuffix("\n")


def _relative_path(secret_id: str) -> PurePosixPath:
    """The id as a path under ``secrets/``; an id that would leave that folder is refused."""
    path = PurePosixPath(secret_id)
    if not secret_id or path.is_absolute() or any(part in {"", ".", ".."} for part in secret_id.split("/")):
        raise SecretError(
            f"secret id {secret_id!r} is not a relative path without '.' or '..' parts", secret_id=secret_id
        )
    if "\0" in secret_id or "\\" in secret_id:
        raise SecretError(f"secret id {secret_id!r} contains a NUL or backslash", secret_id=secret_id)
    return path


def _verify(secret_id: str, value: str, expected: str) -> None:
    algorithm, _, digest = expected.partition(":")
    if algorithm != FINGERPRINT_ALGORITHM:
        raise SecretError(
            f"secret {secret_id!r}: fingerprint algorithm {algorithm!r} is not supported (only sha256)",
            secret_id=secret_id,
        )
    try:
        # surrogateescape: os.environ's own decoding of bytes that are not UTF-8, hashed as those bytes.
        actual = hashlib.sha256(value.encode(errors="surrogateescape")).hexdigest()
    except UnicodeEncodeError:
        raise SecretError(f"secret {secret_id!r} is not valid text", secret_id=secret_id) from None
    if not hmac.compare_digest(actual, digest.lower()):
        raise SecretError(
            f"secret {secret_id!r} on this runner does not match the fingerprint the environment was configured "
            "with (the secret was changed on one side only)",
            secret_id=secret_id,
        )
