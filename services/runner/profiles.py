"""The dbt profile of one run, generated from an environment's configuration.

The profile has one output, ``lockgate``, and selects it (``target: lockgate``). An environment's target mixes
dbt's own fields with Lockgate's settings (costs, budgets, limits: ``LOCKGATE_SETTINGS``), which never reach dbt.

Two rules keep the profile safe to hand to dbt, which renders every profile string as Jinja:

* a secret is never written into the profile: the profile says ``password: "{{ env_var('DBT_ENV_SECRET_PASSWORD') }}"``
  and the value travels in the environment of the dbt process. dbt substitutes such values only after rendering
  (so a secret containing Jinja is inert) and scrubs every ``DBT_ENV_SECRET_*`` value from its own logs;
* a target key or value containing a Jinja delimiter is refused: rendered by dbt, it would run code of the
  environment's author on the runner (``{{ modules.os.system(...) }}``-style), or read other variables.

The YAML comes from ``yaml.safe_dump``, so any key or value (newlines, quotes, unicode) parses back to itself.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import yaml

from services.shared.errors import ContractViolationError

TARGET_NAME: Final = "lockgate"
PROFILE_FILE: Final = "profiles.yml"
SECRET_ENV_PREFIX: Final = "DBT_ENV_SECRET_"  # noqa: S105 - a variable name prefix, not a password
"""dbt's own prefix: such variables are readable only from profiles.yml/packages.yml and scrubbed from logs."""

LOCKGATE_SETTINGS: Final = frozenset(
    {
        "currency",
        "rate_per_second",
        "warehouse_size",
        "credit_price",
        "budget_cost",
        "budget_seconds",
        "budget_action",
        "approval_cost_threshold",
        "max_concurrent_runs",
        "run_retries",
        "memory_limit_mb",
        "cpu_limit",
        "pids_limit",
        "timeout_seconds",
    }
)
"""Target keys that configure Lockgate itself (cost estimates, budgets, quotas, limits), not dbt."""

_JINJA_DELIMITERS: Final = ("{{", "{%", "{#")
"""What makes dbt treat a string as a template (``dbt_common.clients.jinja`` checks exactly these)."""
_ADAPTER_TYPE: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")
_SECRET_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_NOT_IN_PROFILE: Final = frozenset({"type", "threads", *LOCKGATE_SETTINGS})
"""Target keys handled apart from the copied dbt fields."""

TargetValue = str | int | bool


@dataclass(frozen=True, slots=True)
class RenderedProfile:
    """A profile's YAML, the variables dbt needs to read its secrets, and those secrets' values (for redaction).

    ``env`` and ``secret_values`` are left out of ``repr`` so that a logged or failing object shows no secret.
    """

    text: str
    env: dict[str, str] = field(repr=False)
    secret_values: tuple[str, ...] = field(repr=False)

    def write(self, directory: Path) -> Path:
        """Write ``<directory>/profiles.yml``, readable by its owner only from the moment it exists.

        The directory is created (mode 0700) if needed; an existing profile there is an error, not overwritten.
        """
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = directory / PROFILE_FILE
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(path, flags, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)  # the umask can only have removed bits; state the mode exactly
            handle.write(self.text)
        return path


def secret_env_var(name: str) -> str:
    """The variable that carries the secret ``name`` (a profile field) to dbt."""
    return SECRET_ENV_PREFIX + name.upper()


def render_profile(
    profile_name: str,
    adapter_type: str,
    target: Mapping[str, TargetValue],
    secrets: Mapping[str, str],
    *,
    threads: int | None = None,
    query_tag: str | None = None,
) -> RenderedProfile:
    """The profile ``profile_name`` with one output of ``adapter_type``.

    ``target`` is the environment's target (Lockgate's settings in it are dropped); ``secrets`` maps a profile
    field (``password``, ``private_key``) to its resolved value. ``threads`` overrides the target's.
    ``query_tag`` is set for Snowflake only (other adapters have no such field) and overrides the target's.
    """
    _check_template_free("profile name", profile_name)
    if not profile_name.strip():
        raise ContractViolationError("the dbt profile name must not be empty")
    if not _ADAPTER_TYPE.fullmatch(adapter_type):
        raise ContractViolationError(f"adapter type {adapter_type[:64]!r} is not a dbt adapter name")
    declared_type = target.get("type")
    if declared_type is not None and declared_type != adapter_type:
        raise ContractViolationError(
            f"the target says type {declared_type!r} but the environment's adapter is {adapter_type!r}"
        )

    output: dict[str, TargetValue] = {"type": adapter_type}
    chosen_threads = threads if threads is not None else target.get("threads")
    if chosen_threads is not None:
        output["threads"] = _checked_threads(chosen_threads)
    for key, value in target.items():
        if key in _NOT_IN_PROFILE:
            continue
        _check_template_free("target setting name", key)
        output[key] = _checked_value(key, value)
    if query_tag is not None and adapter_type == "snowflake":
        _check_template_free("query tag", query_tag)
        output["query_tag"] = query_tag

    env: dict[str, str] = {}
    for name, value in secrets.items():
        if not _SECRET_NAME.fullmatch(name):
            raise ContractViolationError(f"secret name {name[:64]!r} must be a snake_case profile field name")
        if name in output or name in _NOT_IN_PROFILE:
            raise ContractViolationError(f"{name!r} is both a target setting and a secret")
        variable = secret_env_var(name)
        if variable in env:
            raise ContractViolationError(f"secrets {name!r} and another differ only in case")
        env[variable] = value
        output[name] = "{{ env_var('" + variable + "') }}"

    document = {profile_name: {"target": TARGET_NAME, "outputs": {TARGET_NAME: output}}}
    # Not allow_unicode: written raw, a NEL (U+0085) inside a quoted scalar reads back as a line break; escaped
    # (the default), every string parses back to itself. No line folding either (width).
    text = yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=1 << 30)
    return RenderedProfile(text=text, env=env, secret_values=tuple(env.values()))


def _check_template_free(what: str, text: str) -> None:
    for delimiter in _JINJA_DELIMITERS:
        if delimiter in text:
            raise ContractViolationError(
                f"{what} {text[:64]!r} contains the Jinja delimiter {delimiter!r}: dbt would render it as a template"
            )


def _checked_value(key: str, value: object) -> TargetValue:
    # bool before int: bool is an int, and both are fine as they are.
    if isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        _check_template_free(f"target setting {key!r}: value", value)
        return value
    raise ContractViolationError(f"target setting {key!r} must be a string, integer or boolean")


def _checked_threads(value: object) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ContractViolationError(f"threads must be a positive integer, not {value!r}")
    return value
