"""Input rules of the tenancy context: pure functions that either return the accepted value or raise
``ContractViolationError`` with a message naming the field and the reason.

Hostile values are refused here, before anything reaches the store: ids are slugs; display names may hold
any text except control characters; repository locations are absolute local paths or credential-free git
URLs whose characters cannot start an option, a shell construct or a git remote helper; target settings
never carry secrets.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from contracts.events.tenancy import Repository, RoundtripLevel, SecretRef, TargetValue
from contracts.ids import is_slug
from services.shared.errors import ContractViolationError

NAME_MAX = 200
REASON_MAX = 1000
LOCATION_MAX = 1024
TARGET_VALUE_MAX = 1024
MAX_TARGET_KEYS = 100
MAX_SECRETS = 50
MAX_EDITABLE_MODELS = 10_000

_SETTING_KEY = re.compile(r"[a-z][a-z0-9_]{0,62}")
_ADAPTER = re.compile(r"[a-z][a-z0-9_]{0,31}")
_MODEL = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}(?:\.[A-Za-z0-9_]{1,128}){0,3}")
_SECRET_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/@+-]{0,199}")
_FINGERPRINT = re.compile(r"[a-z0-9]{1,16}:[0-9a-f]{16,128}")
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?")
_URL_PATH = re.compile(r"/?[A-Za-z0-9._~+@/-]{1,1000}")
_SCP_LIKE = re.compile(r"(?P<user>[A-Za-z0-9._-]{1,64})@(?P<host>[^:/]{1,253}):(?P<path>[^:]{1,1000})")
_SSH_USER = re.compile(r"[A-Za-z0-9._-]{1,64}")
_GIT_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,199}")
_URL_WITH_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s@:]*:[^/\s@]+@")
_PATH_FORBIDDEN = frozenset("`$;&|<>\"'\\*?!{}[]()\n\r\t")

_SECRET_WORDS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "private_key",
    "privatekey",
    "api_key",
    "apikey",
    "access_key",
    "credential",
    "keyfile_json",
)
"""A target key containing one of these names a secret; it belongs in ``secrets`` as a reference."""
_NON_SECRET_SUFFIXES = ("_path", "_uri", "_url", "_file")
"""...unless it only points at where the secret lives (``private_key_path``, ``token_uri``)."""


def check_id(kind: str, value: str) -> str:
    if not is_slug(value):
        raise ContractViolationError(
            f"{kind} id {value[:80]!r} is not a valid slug: 1-63 characters of a-z, 0-9 and '_', "
            "starting with a letter or digit",
            field=f"{kind}_id",
        )
    return value


def _has_control(value: str) -> bool:
    return any(unicodedata.category(char) in {"Cc", "Cs"} for char in value)


def check_name(kind: str, value: str) -> str:
    """A display name: any text up to NAME_MAX characters, not blank, no control characters; kept verbatim."""
    if not value.strip():
        raise ContractViolationError(f"{kind} name must not be blank", field="name")
    if len(value) > NAME_MAX:
        raise ContractViolationError(f"{kind} name is {len(value)} characters long; at most {NAME_MAX}", field="name")
    if _has_control(value):
        raise ContractViolationError(f"{kind} name must not contain control characters", field="name")
    return value


def check_reason(value: str) -> str:
    if len(value) > REASON_MAX:
        raise ContractViolationError(f"reason is {len(value)} characters long; at most {REASON_MAX}", field="reason")
    if any(unicodedata.category(char) in {"Cc", "Cs"} and char not in "\n\t" for char in value):
        raise ContractViolationError("reason must not contain control characters", field="reason")
    return value


# -- repository ------------------------------------------------------------------------------


def _bad_location(reason: str) -> ContractViolationError:
    return ContractViolationError(f"repository location refused: {reason}", field="repository")


def check_repository(location: str, ref: str | None) -> Repository:
    """Parse a repository location: an absolute local path, or an https://, ssh://, git:// or scp-like
    (``git@host:path``) git URL without credentials. ``ref`` (branch or tag) only applies to git."""
    if not location or len(location) > LOCATION_MAX:
        raise _bad_location(f"must be 1..{LOCATION_MAX} characters")
    if _has_control(location) or location != location.strip():
        raise _bad_location("must not contain control characters or surrounding whitespace")
    if location.startswith("/"):
        if ref is not None:
            raise ContractViolationError("a ref applies to git repositories only, not to a local path", field="ref")
        return Repository(kind="local", location=_check_local_path(location))
    git_location = _check_git_url(location)
    return Repository(kind="git", location=git_location, ref=None if ref is None else check_ref(ref))


def _check_local_path(location: str) -> str:
    bad = sorted({char for char in location if char in _PATH_FORBIDDEN})
    if bad:
        raise _bad_location(f"a local path must not contain {''.join(bad)!r}")
    path = PurePosixPath(location)
    if ".." in path.parts:
        raise _bad_location("a local path must not contain '..'")
    return location


def _check_git_url(location: str) -> str:
    if location.startswith("-"):
        raise _bad_location("must not start with '-'")
    if "::" in location.split("/", 1)[0]:
        raise _bad_location("git remote helpers ('<transport>::<address>') are not allowed")
    if "://" not in location:
        match = _SCP_LIKE.fullmatch(location)
        if match is None:
            raise _bad_location(
                "expected an absolute local path or a git URL (https://, ssh://, git:// or git@host:path)"
            )
        _check_host(match["host"])
        _check_url_path(match["path"])
        return location
    parts = urlsplit(location)
    scheme = parts.scheme.lower()
    if scheme == "file":
        raise _bad_location("use an absolute local path instead of a file:// URL")
    if scheme == "http":
        raise _bad_location("plain http is not allowed; use https:// or ssh://")
    if scheme not in {"https", "ssh", "git"}:
        raise _bad_location(f"unsupported scheme {scheme[:20]!r}; use https://, ssh:// or git://")
    if parts.query or parts.fragment or "?" in location or "#" in location:
        raise _bad_location("a git URL must not have a query or fragment")
    if parts.password is not None or (parts.username is not None and scheme != "ssh"):
        raise _bad_location("credentials must not be part of the URL; reference a secret instead")
    if parts.username is not None and not _SSH_USER.fullmatch(parts.username):
        raise _bad_location("the ssh user name has characters that are not allowed")
    _check_host(parts.hostname or "")
    try:
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        raise _bad_location("the port is not a number in 0..65535") from None
    _check_url_path(parts.path)
    return location


def _check_host(host: str) -> None:
    if not _HOST.fullmatch(host) or ".." in host:
        raise _bad_location(f"host {host[:80]!r} is not a valid host name")


def _check_url_path(path: str) -> None:
    if not _URL_PATH.fullmatch(path) or path.strip("/") == "":
        raise _bad_location("the repository path may only contain letters, digits and . _ ~ + @ / -")
    if ".." in path.split("/") or path.lstrip("/").startswith("-"):
        raise _bad_location("the repository path must not contain '..' or start with '-'")


def check_ref(ref: str) -> str:
    ok = (
        _GIT_REF.fullmatch(ref) is not None
        and ".." not in ref
        and "//" not in ref
        and "@{" not in ref
        and not ref.endswith((".lock", "/", "."))
    )
    if not ok:
        raise ContractViolationError(f"ref {ref[:80]!r} is not a valid git branch or tag name", field="ref")
    return ref


def check_roundtrip(level: RoundtripLevel, editable_models: Iterable[str]) -> tuple[str, ...]:
    """Editable models exist at level 2 only, where at least one is required; returned sorted and unique."""
    if level not in (0, 1, 2):
        raise ContractViolationError(f"roundtrip level must be 0, 1 or 2, not {level!r}", field="roundtrip_level")
    models = tuple(sorted(set(editable_models)))
    if level != 2 and models:
        raise ContractViolationError(
            f"editable models are only allowed at roundtrip level 2 (this project is at level {level})",
            field="editable_models",
        )
    if level == 2 and not models:
        raise ContractViolationError("roundtrip level 2 requires the list of editable models", field="editable_models")
    if len(models) > MAX_EDITABLE_MODELS:
        raise ContractViolationError(f"at most {MAX_EDITABLE_MODELS} editable models", field="editable_models")
    for model in models:
        if not _MODEL.fullmatch(model):
            raise ContractViolationError(
                f"editable model {model[:80]!r} is not a dbt model name or unique id (e.g. 'orders' or "
                "'model.shop.orders')",
                field="editable_models",
            )
    return models


# -- environment -----------------------------------------------------------------------------


def check_adapter(adapter_type: str) -> str:
    if not _ADAPTER.fullmatch(adapter_type):
        raise ContractViolationError(
            f"adapter type {adapter_type[:40]!r} must be a dbt adapter name such as 'duckdb', 'snowflake' or "
            "'postgres'",
            field="adapter_type",
        )
    return adapter_type


def looks_secret(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in _SECRET_WORDS) and not lowered.endswith(_NON_SECRET_SUFFIXES)


def check_target(target: Mapping[str, TargetValue]) -> dict[str, TargetValue]:
    """Non-secret target settings. A secret-looking key is refused with a pointer to ``secrets``."""
    if len(target) > MAX_TARGET_KEYS:
        raise ContractViolationError(f"at most {MAX_TARGET_KEYS} target settings", field="target")
    checked: dict[str, TargetValue] = {}
    for key in sorted(target):
        value = target[key]
        if not _SETTING_KEY.fullmatch(key):
            raise ContractViolationError(
                f"target setting {key[:64]!r} must be a snake_case name (a-z, 0-9, '_')", field="target"
            )
        if looks_secret(key):
            raise ContractViolationError(
                f"target setting {key!r} looks like a secret; secret values are never stored: put a reference "
                f"in 'secrets' ({{{key!r}: {{secret_id, fingerprint}}}}) instead",
                field=f"target.{key}",
            )
        if key == "type":
            raise ContractViolationError(
                "the adapter is set by 'adapter_type', not by target.type", field="target.type"
            )
        if isinstance(value, str):
            if len(value) > TARGET_VALUE_MAX or _has_control(value):
                raise ContractViolationError(
                    f"target setting {key!r} must be at most {TARGET_VALUE_MAX} characters without control characters",
                    field=f"target.{key}",
                )
            if _URL_WITH_PASSWORD.search(value):
                raise ContractViolationError(
                    f"target setting {key!r} holds a URL with a password; reference a secret instead",
                    field=f"target.{key}",
                )
            if "-----BEGIN" in value:
                raise ContractViolationError(
                    f"target setting {key!r} holds what looks like a key or certificate; reference a secret instead",
                    field=f"target.{key}",
                )
        checked[key] = value
    return checked


def check_secrets(secrets: Mapping[str, SecretRef], target: Mapping[str, TargetValue]) -> dict[str, SecretRef]:
    if len(secrets) > MAX_SECRETS:
        raise ContractViolationError(f"at most {MAX_SECRETS} secret references", field="secrets")
    checked: dict[str, SecretRef] = {}
    for name in sorted(secrets):
        ref = secrets[name]
        if not _SETTING_KEY.fullmatch(name):
            raise ContractViolationError(f"secret name {name[:64]!r} must be a snake_case name", field="secrets")
        if name in target:
            raise ContractViolationError(f"{name!r} is both a target setting and a secret", field=f"secrets.{name}")
        if not _SECRET_ID.fullmatch(ref.secret_id):
            raise ContractViolationError(
                f"secret {name!r}: secret_id must be 1-200 characters of letters, digits and _ . : / @ + -",
                field=f"secrets.{name}.secret_id",
            )
        if not _FINGERPRINT.fullmatch(ref.fingerprint):
            raise ContractViolationError(
                f"secret {name!r}: fingerprint must look like 'sha256:<hex digest>'",
                field=f"secrets.{name}.fingerprint",
            )
        checked[name] = ref
    return checked
