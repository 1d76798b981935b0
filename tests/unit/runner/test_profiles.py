"""Profile generation: Lockgate's settings stay out, secrets travel as DBT_ENV_SECRET_* references, Jinja in the
environment's configuration is refused, any key or value parses back (with dbt's own YAML loader) to itself,
and the file is written owner-only."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from services.runner.profiles import LOCKGATE_SETTINGS, TARGET_NAME, RenderedProfile, render_profile
from services.shared.errors import ContractViolationError

SECRET = "hunter2-{{ not rendered }}'\""


def output_of(profile: RenderedProfile, name: str = "demo") -> dict[str, Any]:
    parsed = yaml.load(profile.text, Loader=yaml.CSafeLoader)
    assert parsed[name]["target"] == TARGET_NAME
    assert list(parsed[name]["outputs"]) == [TARGET_NAME]
    output: dict[str, Any] = parsed[name]["outputs"][TARGET_NAME]
    return output


def test_lockgate_settings_stay_out_of_the_profile_and_dbt_fields_go_in() -> None:
    target = dict.fromkeys(LOCKGATE_SETTINGS, 1) | {"path": "/data/w.duckdb", "schema": "main"}

    profile = render_profile("demo", "duckdb", target, {})

    assert output_of(profile) == {"type": "duckdb", "path": "/data/w.duckdb", "schema": "main"}
    assert profile.env == {}
    assert profile.secret_values == ()


def test_a_secret_becomes_an_env_var_reference_and_its_value_travels_in_env_only() -> None:
    profile = render_profile("demo", "postgres", {"host": "db", "user": "bob"}, {"password": SECRET})

    assert output_of(profile)["password"] == "{{ env_var('DBT_ENV_SECRET_PASSWORD') }}"
    assert profile.env == {"DBT_ENV_SECRET_PASSWORD": SECRET}
    assert profile.secret_values == (SECRET,)
    assert "hunter2" not in profile.text
    assert "hunter2" not in repr(profile)


def test_threads_argument_overrides_the_targets_and_type_is_always_the_adapter() -> None:
    output = output_of(render_profile("demo", "duckdb", {"threads": 8, "type": "duckdb"}, {}, threads=3))

    assert output["threads"] == 3
    assert output["type"] == "duckdb"


def test_a_target_type_other_than_the_adapter_is_refused() -> None:
    with pytest.raises(ContractViolationError, match="type 'postgres'"):
        render_profile("demo", "duckdb", {"type": "postgres"}, {})


@pytest.mark.parametrize("threads", [0, -1, True, "many"])
def test_threads_must_be_a_positive_integer(threads: Any) -> None:
    with pytest.raises(ContractViolationError, match="threads"):
        render_profile("demo", "duckdb", {"threads": threads}, {})


def test_query_tag_is_set_for_snowflake_only() -> None:
    tag = '{"run_id": "r1", "tenant": "t"}'

    assert output_of(render_profile("demo", "snowflake", {"account": "a"}, {}, query_tag=tag))["query_tag"] == tag
    assert "query_tag" not in output_of(render_profile("demo", "duckdb", {}, {}, query_tag=tag))


@pytest.mark.parametrize("delimiter", ["{{", "{%", "{#"])
@pytest.mark.parametrize("where", ["value", "key", "profile", "query_tag"])
def test_jinja_in_the_configuration_is_refused(delimiter: str, where: str) -> None:
    payload = f"x{delimiter} modules.os.system('id') }}"
    args: dict[str, Any] = {"profile_name": "demo", "target": {"schema": "main"}, "query_tag": None}
    if where == "value":
        args["target"] = {"schema": payload}
    elif where == "key":
        args["target"] = {payload: "x"}
    elif where == "profile":
        args["profile_name"] = payload
    else:
        args["query_tag"] = payload

    with pytest.raises(ContractViolationError, match="Jinja"):
        render_profile(args["profile_name"], "snowflake", args["target"], {}, query_tag=args["query_tag"])


@pytest.mark.parametrize(
    ("target", "secrets", "message"),
    [
        ({"password": "x"}, {"password": "y"}, "both a target setting and a secret"),
        ({}, {"type": "y"}, "both a target setting and a secret"),
        ({}, {"bad-name": "y"}, "snake_case"),
        ({}, {"token": "a", "TOKEN": "b"}, "differ only in case"),
        ({"schema": 1.5}, {}, "string, integer or boolean"),
    ],
)
def test_conflicting_or_malformed_settings_are_refused(
    target: dict[str, Any], secrets: dict[str, str], message: str
) -> None:
    with pytest.raises(ContractViolationError, match=message):
        render_profile("demo", "duckdb", target, secrets)


def no_jinja(text: str) -> bool:
    return not any(delimiter in text for delimiter in ("{{", "{%", "{#"))


hostile_text = st.text(max_size=40).filter(no_jinja)
keys = hostile_text.filter(lambda key: key not in LOCKGATE_SETTINGS | {"type", "threads"})
values = st.one_of(hostile_text, st.integers(), st.booleans())


@given(
    name=hostile_text.filter(lambda name: name.strip() != ""),
    target=st.dictionaries(keys, values, max_size=6),
    secret_values=st.lists(st.text(max_size=40), max_size=3),
)
def test_any_keys_and_values_parse_back_to_themselves(
    name: str, target: dict[str, str | int | bool], secret_values: list[str]
) -> None:
    secrets = {f"secret_{index}": value for index, value in enumerate(secret_values)}
    target = {key: value for key, value in target.items() if key not in secrets}

    profile = render_profile(name, "duckdb", target, secrets)

    for loader in (yaml.CSafeLoader, yaml.SafeLoader):
        parsed = yaml.load(profile.text, Loader=loader)  # noqa: S506 - safe loaders
        output = parsed[name]["outputs"][TARGET_NAME]
        assert output == {
            "type": "duckdb",
            **target,
            **{key: f"{{{{ env_var('DBT_ENV_SECRET_{key.upper()}') }}}}" for key in secrets},
        }
        assert [type(output[key]) for key in target] == [type(value) for value in target.values()]
    assert profile.env == {f"DBT_ENV_SECRET_{key.upper()}": value for key, value in secrets.items()}


def test_the_profile_file_is_owner_only_from_its_creation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    created_with: list[int] = []
    real_open = os.open

    def recording_open(path: Any, flags: int, mode: int = 0o777, *args: Any, **kwargs: Any) -> int:
        if str(path).endswith("profiles.yml"):
            created_with.append(mode)
        return real_open(path, flags, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", recording_open)
    previous = os.umask(0)  # the most permissive umask: the mode must not rely on it
    try:
        path = render_profile("demo", "duckdb", {}, {"password": SECRET}).write(tmp_path / "profiles")
    finally:
        os.umask(previous)

    assert created_with == [0o600]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert SECRET not in path.read_text()


def test_an_existing_profile_is_never_overwritten(tmp_path: Path) -> None:
    profile = render_profile("demo", "duckdb", {}, {})
    profile.write(tmp_path)

    with pytest.raises(FileExistsError):
        profile.write(tmp_path)
