"""The real dbt artifact corpus (``shared/corpus``, described in its README): where it is, and reading it.

It lives outside the repository (tens of MB, third-party licences), next to it by default:
``<repo>/../shared/corpus``. ``LOCKGATE_CORPUS`` points elsewhere; tests that need it skip, saying so,
when it is absent.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def corpus_root() -> Path:
    configured = os.environ.get("LOCKGATE_CORPUS")
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "corpus"


def corpus_path(*parts: str) -> Path:
    """A path inside the corpus; skips the calling test when there is no corpus at all."""
    root = corpus_root()
    if not root.is_dir():
        pytest.skip(f"corpus not found at {root}; set LOCKGATE_CORPUS")
    return root.joinpath(*parts)


def corpus_bytes(*parts: str) -> bytes:
    """A corpus file's bytes, gunzipped when its name ends in ``.gz`` (Spellbook, the edited manifests)."""
    path = corpus_path(*parts)
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def corpus_file(folder: Path, *parts: str) -> Path:
    """A corpus file on disk, gunzipped into ``folder`` when it is stored as ``.gz`` (ingestion reads files). The
    copy is named after the corpus path, so files of the same name from different projects never collide."""
    path = corpus_path(*parts)
    if path.suffix != ".gz":
        return path
    out = folder / "-".join((*parts[:-1], parts[-1].removesuffix(".gz")))
    if not out.exists():
        out.write_bytes(gzip.decompress(path.read_bytes()))
    return out
