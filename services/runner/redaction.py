"""Redaction of secret values and credential-looking text before anything leaves the runner.

Every log line, event message and error of a run passes through one ``Redactor``. It replaces with ``***``:

* the run's own secret values (four characters or more; shorter ones would blank out ordinary text), as they
  are and in their JSON-escaped forms (dbt's log lines are JSON, and may quote JSON in turn);
* text that looks like a credential whatever it is: the value of a ``password``/``pwd``/``secret``/``token``/
  ``api_key``-style key (``key=value``, ``key: value``, ``"key": "value"``), PEM private key blocks,
  ``Authorization:`` headers and ``Bearer`` tokens, the password of a URL (``scheme://user:***@host``), AWS
  access key ids, GitHub tokens and JWTs.

The secrets go first, in their own pass: a credential pattern that started before a secret and stopped inside it
would otherwise leave the secret's tail behind. Each pass is one compiled regular expression (the secrets
longest first, so that a secret containing another is removed whole).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Final

MASK: Final = "***"
MIN_SECRET_LENGTH: Final = 4

_KEY: Final = r"(?i:pass(?:word|wd|phrase)|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credentials?)"
"""A key naming a credential; it may be part of a longer name (``client_secret``, ``DBT_ENV_SECRET_X``)."""
_KEY_VALUE: Final = (
    _KEY + r"[A-Za-z0-9_.-]*"  # the rest of the key's name
    r"(?P<kv_sep>\\?[\"']?\s*[:=]\s*)"  # a closing quote (maybe JSON-escaped), then = or :
    r"(?:"
    r"(?P<kv_esc_open>\\\")(?P<kv_esc>(?:[^\"\\\n]|\\[^\"\n])*)(?=\\\")"  # \"value\" inside a JSON string
    r"|(?P<kv_dq_open>\")(?P<kv_dq>(?:[^\"\\\n]|\\.)*)(?=\")"  # "value"
    r"|(?P<kv_sq_open>')(?P<kv_sq>[^'\n]*)(?=')"  # 'value'
    r"|(?P<kv_bare>[^\s\"',;&{}\[\]()<>\\]+)"  # value
    r")"
)
_PEM: Final = r"(?P<pem>-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:.*?-----END [A-Z0-9 ]*PRIVATE KEY-----|.*))"
"""A whole block, or everything after its first line when the block was cut (a log read line by line)."""
_AUTHORIZATION: Final = (
    r"(?P<auth_key>(?i:authorization)\\?[\"']?\s*[:=]\s*\\?[\"']?)(?P<auth>[^\s\"'\\,;]+(?: [^\s\"'\\,;]+)?)"
)
_BEARER: Final = r"(?P<bearer_key>\b(?i:bearer)\s+)(?P<bearer>(?=\S*[0-9])[A-Za-z0-9._~+/-]{8,}=*)"
_URL_USERINFO: Final = r"(?P<url_user>://[^/\s:@\"'\\]*:)(?P<url_password>[^@\s/\"'\\]+)(?=@)"
_AWS_KEY_ID: Final = r"(?P<aws>\b(?:AKIA|ASIA)[0-9A-Z]{16}\b)"
_GITHUB_PAT: Final = r"(?P<github>\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}))"
_JWT: Final = r"(?P<jwt>\beyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)"

_PATTERNS: Final = re.compile(
    "|".join((_PEM, _AUTHORIZATION, _BEARER, _URL_USERINFO, _AWS_KEY_ID, _GITHUB_PAT, _JWT, _KEY_VALUE)),
    # ASCII: case-insensitive parts match ASCII letters only, so every match contains a trigger of _TRIGGERS.
    re.DOTALL | re.ASCII,
)
_TRIGGERS: Final = (
    *("pass", "pwd", "secret", "token", "api", "access", "private", "credential"),
    *("-----begin", "authorization", "bearer", "://", "akia", "asia", "eyj"),
    *("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
)
"""Lower-case text that every match of ``_PATTERNS`` contains: a cheap test that skips the regex for most lines."""
_SECRET_PARTS: Final = ("kv_esc", "kv_dq", "kv_sq", "kv_bare", "auth", "bearer", "url_password")
"""Groups holding the secret part of a match whose beginning (a key, a separator, a URL's user) is kept."""


def _mask_pattern(match: re.Match[str]) -> str:
    for secret_group in _SECRET_PARTS:
        if match.group(secret_group) is not None:
            # Keep the text from the match's start to the secret part (the key and its separator), mask the rest.
            return match.string[match.start() : match.start(secret_group)] + MASK
    return MASK


def _written_forms(secret: str) -> set[str]:
    """How ``secret`` may appear in text: as it is, JSON-escaped (ASCII-only or not), JSON-escaped twice."""
    escaped = json.dumps(secret)[1:-1]
    return {
        secret,
        escaped,
        json.dumps(secret, ensure_ascii=False)[1:-1],
        json.dumps(escaped)[1:-1],
    }


class Redactor:
    """Masks ``secrets`` and credential patterns in text. Immutable, so one instance serves every thread."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        forms = {form for secret in secrets if len(secret) >= MIN_SECRET_LENGTH for form in _written_forms(secret)}
        self._forms = tuple(sorted(forms, key=lambda form: (-len(form), form)))
        self._secrets = re.compile("|".join(map(re.escape, self._forms))) if self._forms else None

    def redact(self, text: str) -> str:
        if self._contains_secret(text):
            text = self._without_secrets(text)
        if not _may_hold_credential(text):
            return text
        masked = _PATTERNS.sub(_mask_pattern, text)
        # A mask next to other text can spell a secret again ("d=***" out of "password=x"): rare, cheap to check.
        if masked != text and self._contains_secret(masked):
            return self._without_secrets(masked)
        return masked

    def redact_bytes(self, data: bytes) -> bytes:
        """``redact`` for raw output (a log line as read); bytes that are not UTF-8 pass through unchanged."""
        return self.redact(data.decode(errors="surrogateescape")).encode(errors="surrogateescape")

    def _contains_secret(self, text: str) -> bool:
        # ``in`` (a C substring search) per written form beats the regex's attempt of every alternative at
        # every position by an order of magnitude; the regex only runs where a secret is known to be.
        for form in self._forms:  # noqa: SIM110 - faster than any() over a generator, on the hot path
            if form in text:
                return True
        return False

    def _without_secrets(self, text: str) -> str:
        if self._secrets is None:
            return text
        while True:
            masked = self._secrets.sub(MASK, text)
            # Every replacement shortens the text (a secret is longer than its mask), so this ends.
            if masked == text:
                return text
            text = masked


def _may_hold_credential(text: str) -> bool:
    """False only when no credential pattern can match: each needs one of ``_TRIGGERS`` (in lower case)."""
    lowered = text.lower()
    for trigger in _TRIGGERS:  # noqa: SIM110 - as above
        if trigger in lowered:
            return True
    return False
