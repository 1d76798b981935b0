"""The object store: one behavioural suite run against both adapters, local files and S3 (moto, through the
``minio`` SDK), each opened from settings by ``open_object_store`` as the services do.

Not provable here: moto accepts any credentials and signature, so nothing below shows that a wrong secret is
refused by a real S3 (ADR 0009).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.shared.errors import ContractViolationError, InfrastructureError, NotFoundError
from services.shared.objectstore import ObjectCorruptedError, ObjectStore, open_object_store
from services.shared.settings import Settings, load_settings
from tests.s3 import ACCESS_KEY, REGION, SECRET_KEY, s3_client
from tests.services import free_port

MIB = 1024 * 1024
PUT_FILE_BUDGET = 24 * MIB
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Adapter:
    name: str
    env: dict[str, str]
    """The LOCKGATE_* variables that select this store."""
    tamper: Callable[[str, bytes], None]
    """Replace the stored bytes of a key behind the store's back."""
    config: Path

    def settings(self) -> Settings:
        return load_settings(self.env, config_file=self.config)

    def open(self) -> ObjectStore:
        return open_object_store(self.settings())


def s3_env(endpoint: str, bucket: str) -> dict[str, str]:
    return {
        "LOCKGATE_OBJECT_STORE": f"s3://{bucket}",
        "LOCKGATE_S3_ENDPOINT": endpoint,
        "LOCKGATE_S3_ACCESS_KEY": ACCESS_KEY,
        "LOCKGATE_S3_SECRET_KEY": SECRET_KEY,
        "LOCKGATE_S3_REGION": REGION,
        "LOCKGATE_S3_SECURE": "false",
    }


@pytest.fixture(params=["file", "s3"])
def adapter(request: pytest.FixtureRequest, tmp_path: Path) -> Adapter:
    config = tmp_path / "no-lockgate.toml"
    if request.param == "file":
        root = tmp_path / "objects"
        env = {"LOCKGATE_OBJECT_STORE": f"file://{root}"}
        return Adapter("file", env, lambda key, data: _overwrite(root / key, data), config)
    endpoint: str = request.getfixturevalue("s3_endpoint")
    bucket = f"lgtest-{uuid.uuid4().hex[:12]}"
    client = s3_client(endpoint)

    def tamper(key: str, data: bytes) -> None:
        client.put_object(bucket, key, io.BytesIO(data), len(data))

    return Adapter("s3", s3_env(endpoint, bucket), tamper, config)


def _overwrite(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(MIB):
            hasher.update(chunk)
    return hasher.hexdigest()


# -- put / get ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 5 * MIB + 1, 12 * MIB], ids=["empty", "1B", "5MiB+1", "12MiB"])
async def test_get_returns_exactly_the_bytes_put(adapter: Adapter, size: int) -> None:
    store = adapter.open().for_tenant("acme")
    data = os.urandom(size)
    stored = await store.put("manifest", data, content_type="application/json")
    assert stored.key == f"acme/manifest/{sha(data)[:2]}/{sha(data)}"
    assert (stored.sha256, stored.size, stored.content_type) == (sha(data), size, "application/json")
    assert await store.get(stored.key) == data
    assert await store.stat(stored.key) == stored
    assert await store.exists(stored.key)


async def test_same_content_is_stored_once_under_the_same_key(adapter: Adapter) -> None:
    store = adapter.open().for_tenant("acme")
    data = b'{"nodes": {}}'
    first = await store.put("manifest", data, content_type="application/json")
    again = await store.put("manifest", bytearray(data), content_type="text/plain")
    as_view = await store.put("manifest", memoryview(data))
    assert first == again == as_view  # the first put's content type stays: the second wrote nothing
    other_kind = await store.put("catalog", data)
    assert other_kind.key != first.key
    assert other_kind.sha256 == first.sha256


async def test_concurrent_puts_of_the_same_content_agree(adapter: Adapter) -> None:
    store = adapter.open().for_tenant("acme")
    data = os.urandom(2 * MIB)
    results = await asyncio.gather(*(store.put("run_results", data) for _ in range(8)))
    assert len({r.key for r in results}) == 1
    assert await store.get(results[0].key) == data


async def test_missing_object_is_not_found(adapter: Adapter) -> None:
    store = adapter.open().for_tenant("acme")
    key = f"acme/manifest/{sha(b'never stored')[:2]}/{sha(b'never stored')}"
    with pytest.raises(NotFoundError):
        await store.get(key)
    assert await store.stat(key) is None
    assert not await store.exists(key)


@pytest.mark.parametrize(
    ("kind", "content_type"),
    [("Manifest", "application/json"), ("../x", "application/json"), ("logs", "text/plain\r\nX-Evil: 1"), ("logs", "")],
)
async def test_bad_kind_or_content_type_is_refused(adapter: Adapter, kind: str, content_type: str) -> None:
    store = adapter.open().for_tenant("acme")
    with pytest.raises(ContractViolationError):
        await store.put(kind, b"x", content_type=content_type)


# -- files ----------------------------------------------------------------------------------------------------

_PUT_FILE_CHILD = """
import asyncio, json, sys, tracemalloc
from pathlib import Path
from services.shared.objectstore import open_object_store
from services.shared.settings import load_settings

async def main() -> None:
    store = open_object_store(load_settings(config_file=Path(sys.argv[3]))).for_tenant(sys.argv[1])
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    stored = await store.put_file("logs", Path(sys.argv[2]), content_type="application/gzip")
    peak = tracemalloc.get_traced_memory()[1] - base
    print(json.dumps({"key": stored.key, "size": stored.size, "peak": peak}))

asyncio.run(main())
"""


async def test_put_file_streams_a_large_file(adapter: Adapter, tmp_path: Path) -> None:
    """~50 MB through ``put_file`` in a fresh interpreter whose allocations tracemalloc counts (in this process
    it would also count moto's copy of the upload): the peak stays a small fraction of the file."""
    source = tmp_path / "big.log.gz"
    hasher = hashlib.sha256()
    with source.open("wb") as out:
        for _ in range(50):
            chunk = os.urandom(MIB)
            hasher.update(chunk)
            out.write(chunk)
    size = source.stat().st_size
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", _PUT_FILE_CHILD, "acme", str(source), str(adapter.config)],
        env={**os.environ, **adapter.env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["key"] == f"acme/logs/{hasher.hexdigest()[:2]}/{hasher.hexdigest()}"
    assert result["size"] == size
    # Bounded by the adapter's buffers (1 MiB chunks; S3: a few 5 MiB multipart parts), not by the file.
    assert result["peak"] < PUT_FILE_BUDGET, f"put_file held {result['peak'] / MIB:.1f} MiB of {size / MIB:.0f} MiB"

    store = adapter.open().for_tenant("acme")
    stat = await store.stat(result["key"])
    assert stat is not None
    assert (stat.size, stat.content_type) == (size, "application/gzip")
    dest = tmp_path / "downloaded.log.gz"
    downloaded = await store.download(result["key"], dest)
    assert downloaded == stat
    assert file_sha(dest) == hasher.hexdigest()
    again = await store.put_file("logs", source, content_type="application/gzip")  # already there: no upload
    assert again == stat


async def test_download_replaces_the_destination_with_identical_bytes(adapter: Adapter, tmp_path: Path) -> None:
    store = adapter.open().for_tenant("acme")
    data = os.urandom(12 * MIB)
    stored = await store.put("catalog", data)
    dest = tmp_path / "catalog.json"
    dest.write_bytes(b"stale")
    assert await store.download(stored.key, dest) == stored
    assert file_sha(dest) == stored.sha256
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "objects") == ["catalog.json"]  # no temp left


async def test_put_file_of_a_missing_file_is_not_found(adapter: Adapter, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        await adapter.open().for_tenant("acme").put_file("logs", tmp_path / "absent.log")


async def test_a_file_that_changes_during_put_file_is_not_kept(
    adapter: Adapter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Simulate a writer still appending: the first pass hashed other bytes than the upload then read."""
    source = tmp_path / "run.log"
    source.write_bytes(b"final content")
    earlier = b"earlier content"
    monkeypatch.setattr(
        "services.shared.objectstore.store._hash_file", lambda _path: (sha(earlier), len(b"final content"))
    )
    store = adapter.open().for_tenant("acme")
    with pytest.raises(ContractViolationError, match="changed while it was being stored"):
        await store.put_file("logs", source)
    assert not await store.exists(f"acme/logs/{sha(earlier)[:2]}/{sha(earlier)}")


# -- tenancy and hostile keys ---------------------------------------------------------------------------------


async def test_a_tenant_cannot_read_another_tenants_object(adapter: Adapter, tmp_path: Path) -> None:
    objects = adapter.open()
    stored = await objects.for_tenant("acme").put("manifest", b"acme's manifest")
    other = objects.for_tenant("globex")
    with pytest.raises(NotFoundError) as foreign:
        await other.get(stored.key)
    assert await other.stat(stored.key) is None
    assert not await other.exists(stored.key)
    dest = tmp_path / "stolen.json"
    with pytest.raises(NotFoundError):
        await other.download(stored.key, dest)
    assert not dest.exists()
    # Indistinguishable from a key that does not exist anywhere.
    absent = f"acme/manifest/{sha(b'nothing')[:2]}/{sha(b'nothing')}"
    with pytest.raises(NotFoundError) as missing:
        await other.get(absent)
    assert str(foreign.value).replace(stored.key, "<key>") == str(missing.value).replace(absent, "<key>")


HOSTILE_KEYS = [
    "",
    "../../etc/passwd",
    "/etc/passwd",
    "acme/manifest/../../globex/manifest/ab/" + "ab" * 32,
    "acme/manifest/ab/../../x",
    "acme\\manifest\\ab\\" + "ab" * 32,
    "acme/manifest/ab/" + "ab" * 32 + "\x00",
    "acme/manifest/ab/" + "AB" * 32,  # upper-case hex is not a key this store builds
    "acme/manifest/cd/" + "ab" * 32,  # shard does not match the hash
    "acme/manifest/ab/" + "ab" * 32 + "/extra",
    "acme//ab/" + "ab" * 32,
    "./acme/manifest/ab/" + "ab" * 32,
    "acme/manifest/ab/" + "ab" * 32 + ".type",  # the local adapter's sidecar is not an object
    "a" * 5000,
    "acme/" + "m" * 200 + "/ab/" + "ab" * 32,
]


@pytest.mark.parametrize("key", HOSTILE_KEYS)
async def test_malformed_keys_are_refused(adapter: Adapter, key: str, tmp_path: Path) -> None:
    store = adapter.open().for_tenant("acme")
    with pytest.raises(ContractViolationError):
        await store.get(key)
    with pytest.raises(ContractViolationError):
        await store.stat(key)
    with pytest.raises(ContractViolationError):
        await store.download(key, tmp_path / "out")


@pytest.mark.parametrize("tenant", ["", "Acme", "../acme", "a/b", "a" * 64])
def test_malformed_tenant_is_refused(adapter: Adapter, tenant: str) -> None:
    with pytest.raises(ContractViolationError):
        adapter.open().for_tenant(tenant)


# -- corruption -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["flipped", "truncated", "replaced"])
async def test_corruption_is_detected_on_read(adapter: Adapter, damage: str, tmp_path: Path) -> None:
    store = adapter.open().for_tenant("acme")
    data = os.urandom(3 * MIB)
    stored = await store.put("manifest", data)
    tampered = {
        "flipped": data[:1000] + bytes([data[1000] ^ 1]) + data[1001:],
        "truncated": data[:-1],
        "replaced": b"{}",
    }[damage]
    adapter.tamper(stored.key, tampered)
    with pytest.raises(ObjectCorruptedError, match="corrupt"):
        await store.get(stored.key)
    dest = tmp_path / "manifest.json"
    dest.write_bytes(b"previous")
    with pytest.raises(ObjectCorruptedError):
        await store.download(stored.key, dest)
    assert dest.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "objects") == ["manifest.json"]


# -- adapter specifics ----------------------------------------------------------------------------------------


async def test_local_store_never_follows_a_symlink_out_of_its_root(tmp_path: Path) -> None:
    """Someone with write access below the root plants a symlink to another directory holding a well-formed
    object: the store refuses to cross it instead of serving the outside file."""
    root = tmp_path / "objects"
    outside = tmp_path / "outside"
    data = b"outside the root"
    key = f"globex/manifest/{sha(data)[:2]}/{sha(data)}"
    (outside / key).parent.mkdir(parents=True)
    (outside / key).write_bytes(data)
    root.mkdir()
    (root / "globex").symlink_to(outside / "globex", target_is_directory=True)
    store = open_object_store(Settings(object_store=f"file://{root}")).for_tenant("globex")
    with pytest.raises(InfrastructureError, match="symlink"):
        await store.get(key)
    with pytest.raises(InfrastructureError, match="symlink"):
        await store.put("manifest", data)
    # A symlink as the object itself is refused too.
    real = root / "acme" / "manifest" / sha(data)[:2]
    real.mkdir(parents=True)
    (real / sha(data)).symlink_to(outside / key)
    with pytest.raises(InfrastructureError, match="symlink"):
        await (
            open_object_store(Settings(object_store=f"file://{root}"))
            .for_tenant("acme")
            .get(f"acme/manifest/{sha(data)[:2]}/{sha(data)}")
        )


async def test_local_store_leaves_only_the_object_and_its_type(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    stored = (
        await open_object_store(Settings(object_store=f"file://{root}"))
        .for_tenant("acme")
        .put("logs", b"line\n", content_type="text/plain")
    )
    shard = (root / stored.key).parent
    assert sorted(p.name for p in shard.iterdir()) == [stored.sha256, f"{stored.sha256}.type"]


def test_file_default_is_under_home(tmp_path: Path) -> None:
    objects = open_object_store(Settings(home=tmp_path / "home"))
    assert objects.location == str(tmp_path / "home" / "objects")


async def test_s3_bucket_is_created_on_first_write(s3_endpoint: str, tmp_path: Path) -> None:
    bucket = f"lgtest-{uuid.uuid4().hex[:12]}"
    client = s3_client(s3_endpoint)
    assert not client.bucket_exists(bucket)
    settings = load_settings(s3_env(s3_endpoint, bucket), config_file=tmp_path / "none.toml")
    reader = open_object_store(settings).for_tenant("acme")
    assert await reader.stat(f"acme/logs/{sha(b'x')[:2]}/{sha(b'x')}") is None  # reading creates nothing
    assert not client.bucket_exists(bucket)
    stored = await reader.put("logs", b"x")
    assert client.bucket_exists(bucket)
    # A second process finds the bucket already there.
    again = await open_object_store(settings).for_tenant("acme").put("logs", b"y")
    assert again.size == 1
    assert await reader.get(stored.key) == b"x"


async def test_s3_server_down_is_an_infrastructure_error(tmp_path: Path) -> None:
    endpoint = f"127.0.0.1:{free_port()}"  # nothing listens there
    settings = load_settings(s3_env(endpoint, "lgtest-down"), config_file=tmp_path / "none.toml")
    store = open_object_store(settings).for_tenant("acme")
    key = f"acme/logs/{sha(b'x')[:2]}/{sha(b'x')}"
    started = time.monotonic()
    for call in (store.put("logs", b"x"), store.get(key), store.stat(key)):
        with pytest.raises(InfrastructureError, match=f"s3://lgtest-down at http://{endpoint} is unreachable"):
            await call
    assert time.monotonic() - started < 15  # bounded retries, not the SDK's five-minute default


async def test_s3_server_stopping_mid_session_is_an_infrastructure_error(tmp_path: Path) -> None:
    """The same store object keeps working through its connection pool until the server goes away."""
    from tests.s3 import moto_s3  # noqa: PLC0415

    with moto_s3() as endpoint:
        settings = load_settings(s3_env(endpoint, "lgtest-stop"), config_file=tmp_path / "none.toml")
        store = open_object_store(settings).for_tenant("acme")
        stored = await store.put("logs", b"before")
        assert await store.get(stored.key) == b"before"
    with pytest.raises(InfrastructureError, match="unreachable"):
        await store.get(stored.key)


# -- configuration --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["s3", "s3://", "s3://ab", "s3://Bucket", "s3://bucket/prefix", "file://relative/dir", "ftp://x", "memory", ""],
)
def test_invalid_object_store_setting_is_refused(value: str) -> None:
    with pytest.raises(ContractViolationError, match="object store"):
        open_object_store(Settings(object_store=value))


def test_s3_endpoint_with_credentials_is_refused_without_echoing_them() -> None:
    settings = Settings(object_store="s3://bucket", s3_endpoint="http://AKIA:hunter2@127.0.0.1:9000")
    with pytest.raises(ContractViolationError) as refused:
        open_object_store(settings)
    assert "hunter2" not in str(refused.value)


def test_settings_repr_masks_s3_credentials(tmp_path: Path) -> None:
    settings = load_settings(
        {"LOCKGATE_S3_ACCESS_KEY": "AKIAEXAMPLE", "LOCKGATE_S3_SECRET_KEY": "hunter2"}, config_file=tmp_path / "x"
    )
    assert settings.s3_secret_key == "hunter2"
    for shown in (repr(settings), str(settings), f"{settings}", repr([settings])):
        assert "hunter2" not in shown
        assert "AKIAEXAMPLE" not in shown
        assert "s3_secret_key='***'" in shown
    assert "s3_secret_key=None" in repr(Settings())
