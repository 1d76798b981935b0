"""Secret resolution on a runner: environment variable first, then an owner-only file under LOCKGATE_HOME; the
value must match the environment's fingerprint; errors name the secret id and never carry the value."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.runner.ports import SecretResolver
from services.runner.secrets import LocalSecrets, SecretError, env_var_name, fingerprint

VALUE = "correct horse battery staple"
OTHER = "some other value entirely"


def write_secret(home: Path, secret_id: str, content: str, mode: int = 0o600) -> Path:
    path = home / "secrets" / secret_id
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    path.chmod(mode)
    return path


def assert_no_value(error: SecretError, *values: str) -> None:
    for value in values:
        for shown in (str(error), repr(error), error.message, repr(error.details)):
            assert value not in shown


def test_the_id_maps_to_an_env_var_name() -> None:
    assert env_var_name("vault:kv/dbt/prod") == "LOCKGATE_SECRET_VAULT_KV_DBT_PROD"
    assert env_var_name("pg-password.v2") == "LOCKGATE_SECRET_PG_PASSWORD_V2"


def test_an_env_var_is_used_before_a_file(tmp_path: Path) -> None:
    write_secret(tmp_path, "pg", OTHER)
    secrets = LocalSecrets(tmp_path, {"LOCKGATE_SECRET_PG": VALUE})

    assert secrets.resolve("pg", fingerprint(VALUE)) == VALUE


def test_a_file_in_a_sub_folder_is_read_without_one_trailing_newline(tmp_path: Path) -> None:
    write_secret(tmp_path, "vault:kv/dbt/prod", VALUE + "\n\n")
    resolver: SecretResolver = LocalSecrets(tmp_path, {})

    assert resolver.resolve("vault:kv/dbt/prod", fingerprint(VALUE + "\n")) == VALUE + "\n"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_a_file_readable_by_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    write_secret(tmp_path, "pg", VALUE, mode)

    with pytest.raises(SecretError, match=r"'pg'.*accessible by group or others.*chmod 600") as caught:
        LocalSecrets(tmp_path, {}).resolve("pg", fingerprint(VALUE))
    assert_no_value(caught.value, VALUE)


def test_a_fingerprint_mismatch_names_the_id_and_never_the_values(tmp_path: Path) -> None:
    write_secret(tmp_path, "pg", VALUE)

    for secrets in (LocalSecrets(tmp_path, {}), LocalSecrets(tmp_path, {"LOCKGATE_SECRET_PG": VALUE})):
        with pytest.raises(SecretError, match="secret 'pg' on this runner does not match") as caught:
            secrets.resolve("pg", fingerprint(OTHER))
        assert caught.value.secret_id == "pg"
        assert_no_value(caught.value, VALUE, OTHER)


def test_an_unknown_id_says_where_the_secret_is_looked_for(tmp_path: Path) -> None:
    with pytest.raises(SecretError, match=r"'vault:x/y' is unknown.*LOCKGATE_SECRET_VAULT_X_Y.*secrets/vault:x/y"):
        LocalSecrets(tmp_path, {}).resolve("vault:x/y", fingerprint(VALUE))


@pytest.mark.parametrize("secret_id", ["../outside", "a/../../outside", "/etc/passwd", "a//b", "./a", "a/", ""])
def test_an_id_that_would_leave_the_secrets_folder_is_refused(tmp_path: Path, secret_id: str) -> None:
    home = tmp_path / "home"
    (home / "secrets" / "a").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.write_text(VALUE)
    outside.chmod(0o600)

    with pytest.raises(SecretError, match="not a relative path"):
        LocalSecrets(home, {}).resolve(secret_id, fingerprint(VALUE))


def test_only_sha256_fingerprints_are_accepted(tmp_path: Path) -> None:
    with pytest.raises(SecretError, match="'md5' is not supported"):
        LocalSecrets(tmp_path, {"LOCKGATE_SECRET_PG": VALUE}).resolve("pg", "md5:" + "0" * 32)


def test_a_file_that_is_not_utf8_text_is_refused(tmp_path: Path) -> None:
    path = write_secret(tmp_path, "pg", "")
    path.write_bytes(b"\xff\xfe")

    with pytest.raises(SecretError, match="not UTF-8"):
        LocalSecrets(tmp_path, {}).resolve("pg", fingerprint(VALUE))


def test_a_directory_is_not_a_secret(tmp_path: Path) -> None:
    (tmp_path / "secrets" / "pg").mkdir(parents=True, mode=0o700)

    with pytest.raises(SecretError, match="not a regular file"):
        LocalSecrets(tmp_path, {}).resolve("pg", fingerprint(VALUE))


def test_the_fingerprint_is_sha256_of_the_utf8_bytes() -> None:
    assert fingerprint("abc") == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
