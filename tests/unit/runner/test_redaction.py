"""Redaction: a run's secrets never survive it, raw or JSON-escaped, whatever they contain; credential patterns
are masked but keep their key; text with neither passes unchanged; a dbt JSON log line stays valid JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from services.runner.redaction import _PATTERNS, MASK, Redactor, _may_hold_credential

secrets = st.text(min_size=4, max_size=40)
surrounding = st.text(max_size=60)
TRIGGER_WORDS = (
    "pass",
    "pwd",
    "secret",
    "token",
    "api",
    "access",
    "private",
    "credential",
    "begin",
    "authorization",
    "bearer",
    "://",
    "akia",
    "asia",
    "eyj",
    "gh",
)
"""Written independently of the module: text containing none of these (any case) holds no credential pattern."""


def written(secret: str, form: str) -> str:
    if form == "raw":
        return secret
    if form == "json":
        return json.dumps(secret)[1:-1]
    if form == "json_unicode":
        return json.dumps(secret, ensure_ascii=False)[1:-1]
    return json.dumps(json.dumps(secret)[1:-1])[1:-1]


@given(
    secret=secrets,
    others=st.lists(secrets, max_size=3),
    before=surrounding,
    after=surrounding,
    form=st.sampled_from(["raw", "json", "json_unicode", "json_twice"]),
)
@example(secret="****", others=[], before="", after="*", form="raw")  # the mask plus a star spells it again
@example(secret="d=***", others=[], before="password=x", after="", form="raw")  # masking a password spells it
@example(secret="a.*+?[(\\", others=["a.*+"], before="", after="", form="raw")  # regex syntax, a secret's prefix
@example(secret='p"w\\\n\u2028é', others=[], before='{"msg": "', after='"}', form="json")
def test_a_secret_never_survives_in_any_written_form(
    secret: str, others: list[str], before: str, after: str, form: str
) -> None:
    redactor = Redactor([*others, secret])

    out = redactor.redact(before + written(secret, form) + after)

    assert secret not in out
    assert written(secret, form) not in out


@given(secret=secrets, copies=st.integers(min_value=2, max_value=5), glue=st.sampled_from(["", " ", "\n", "x"]))
def test_every_occurrence_is_masked(secret: str, copies: int, glue: str) -> None:
    out = Redactor([secret]).redact(glue.join([secret] * copies))
    assert secret not in out
    assert out.count(MASK) >= 1


@given(text=st.text(max_size=200), secret_list=st.lists(secrets, max_size=4))
def test_text_without_secrets_or_credentials_is_unchanged(text: str, secret_list: list[str]) -> None:
    lowered = text.lower()
    assume(not any(word in lowered for word in TRIGGER_WORDS))
    assume(not any(secret in text for secret in secret_list))

    assert Redactor(secret_list).redact(text) == text


fragments = st.sampled_from(
    [
        "password",
        "PassWord",
        "PWD",
        "client_secret",
        "Token",
        "API_KEY",
        "access-key",
        "private_key",
        "credentials",
        "authorization",
        "Bearer ",
        "://",
        "AKIA",
        "ASIA",
        "eyJ",
        "ghp_",
        "github_pat_",
        "-----BEGIN RSA PRIVATE KEY-----",
        "-----END RSA PRIVATE KEY-----",
        "=",
        ":",
        '"',
        "'",
        '\\"',
        "@",
        "/",
        " ",
        "\n",
        ".",
        "\u212a",  # KELVIN SIGN: lower() is "k", a case-insensitive regex without ASCII would match it too
        "\u017f",  # LATIN SMALL LETTER LONG S: re.IGNORECASE matches it to "s", str.lower() does not
    ]
)


@given(parts=st.lists(st.one_of(fragments, st.text(alphabet="aAzZ09_-+/", min_size=1, max_size=24)), max_size=12))
def test_every_credential_pattern_match_contains_a_trigger(parts: list[str]) -> None:
    """The fast path (no trigger: the patterns are not even tried) never skips a line a pattern would mask."""
    text = "".join(parts)
    if _PATTERNS.search(text) is not None:
        assert _may_hold_credential(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("password=hunter22 rest", "password=*** rest"),
        ("PWD: hunter22", "PWD: ***"),
        ("db_password = 'hunter 22' rest", "db_password = '***' rest"),
        ('{"password": "x\\"y", "user": "bob"}', '{"password": "***", "user": "bob"}'),
        ('{"msg": "login with token: \\"abc def\\" failed"}', '{"msg": "login with token: \\"***\\" failed"}'),
        ("url?api_key=12345&page=2", "url?api_key=***&page=2"),
        ("CLIENT_SECRET=s3cr3t", "CLIENT_SECRET=***"),
        ("postgres://bob:pa:ss@db.example/x", "postgres://bob:***@db.example/x"),
        ("https://:only-pass@host", "https://:***@host"),
        ("https://host:8080/path@x", "https://host:8080/path@x"),
        ("Authorization: Bearer abc.def", "Authorization: ***"),
        ('-H "authorization: Basic dXNlcjpwYXNz"', '-H "authorization: ***"'),
        ("sent Bearer 0123456789abcdef to", "sent Bearer *** to"),
        ("key AKIAIOSFODNN7EXAMPLE used", "key *** used"),
        ("gh token ghp_" + "a1" * 18 + " end", "gh token *** end"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln ok", "jwt *** ok"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIabc\n-----END RSA PRIVATE KEY-----\nafter", "***\nafter"),
        ("-----BEGIN PRIVATE KEY-----\nMIIabc (cut here)", "***"),
    ],
)
def test_credential_patterns_are_masked_and_keep_their_key(text: str, expected: str) -> None:
    assert Redactor().redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Bearer tokens are documented here",  # no digit: a word, not a token
        '"secrets": {"name": {"ref": "x"}}',  # a key word before a mapping, not before a value
        "the access policy passes",  # no separator after the key word
        "1 of 9 OK created sql view model main.stg_orders ... [OK in 0.12s]",
    ],
)
def test_ordinary_text_near_credentials_is_kept(text: str) -> None:
    assert Redactor().redact(text) == text


def test_a_short_secret_is_not_masked_it_would_blank_out_ordinary_text() -> None:
    assert Redactor(["abc"]).redact("abc abcd") == "abc abcd"


def test_the_longest_secret_wins_where_secrets_overlap() -> None:
    assert Redactor(["abcd", "abcdefgh"]).redact("xabcdefghx") == "x***x"


def test_a_redacted_dbt_json_log_line_is_still_json_with_only_the_secret_masked() -> None:
    secret = 'hunter"2\\é'
    line = json.dumps(
        {
            "info": {"msg": f"connecting with {secret} and password={secret}", "level": "info", "name": "X"},
            "data": {"conn": f"postgres://u:{secret}@h/db", "other": "kept"},
        }
    )

    out = json.loads(Redactor([secret]).redact(line))

    assert out["info"] == {"msg": "connecting with *** and password=***", "level": "info", "name": "X"}
    assert out["data"] == {"conn": "postgres://u:***@h/db", "other": "kept"}


def test_bytes_are_redacted_and_invalid_utf8_passes_through() -> None:
    data = b"\xff\xfe raw hunter22 \xc3"

    assert Redactor(["hunter22"]).redact_bytes(data) == b"\xff\xfe raw *** \xc3"


def test_a_real_dbt_json_log_passes_unchanged() -> None:
    """No false positive in what dbt itself writes (the runner parses these lines after redaction)."""
    log = Path(__file__).with_name("dbt_build_log.jsonl").read_text()
    assert len(log.splitlines()) > 10

    assert Redactor(["not in this log"]).redact(log) == log
