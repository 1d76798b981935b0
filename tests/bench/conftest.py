"""Shared helpers for the benchmarks in ``tests/bench/`` (run by ``make bench``: ``pytest tests/bench -m bench -s``).

Benchmarks compare Lockgate with an anchor *in the same run*: configurations are interleaved round by round so
that outside load on a shared machine falls on all of them alike, and results are reported as medians and ratios.

- ``bench_*.py`` files are collected as test modules (pytest only collects ``test_*.py`` by default).
- ``interleaved`` runs a set of configurations for several rounds, rotating their order.
- ``Result``/``markdown_table`` summarise; ``update_readme_section`` rewrites one ``## <title>`` section of
  ``tests/bench/README.md`` and leaves every other section as it is.
"""

from __future__ import annotations

import os
import platform
import re
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

README = Path(__file__).parent / "README.md"


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Module | None:
    # A file named on the command line is collected by pytest itself; collecting it here too would run it twice.
    if file_path.suffix == ".py" and file_path.name.startswith("bench_") and not parent.session.isinitpath(file_path):
        module: pytest.Module = pytest.Module.from_parent(parent, path=file_path)
        return module
    return None


@dataclass
class Sample:
    """One run of one configuration: how many units of work in how many seconds, plus per-operation latencies."""

    units: int
    seconds: float
    latencies_s: list[float] = field(default_factory=list)
    cpu_seconds: float = 0.0
    """CPU time of this (client) process during the run: less sensitive to outside load than wall time."""

    @property
    def rate(self) -> float:
        return self.units / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Result:
    name: str
    samples: list[Sample] = field(default_factory=list)

    @property
    def rates(self) -> list[float]:
        return [s.rate for s in self.samples]

    @property
    def median(self) -> float:
        return statistics.median(self.rates)

    def cpu_us_per_unit(self) -> float:
        """Median over runs of the client CPU per unit of work, in microseconds."""
        return statistics.median(s.cpu_seconds / s.units * 1e6 for s in self.samples if s.units)

    def latency_ms(self, quantile: float) -> float:
        """Median over runs of the per-run latency quantile, in milliseconds."""
        per_run = [percentile(s.latencies_s, quantile) for s in self.samples if s.latencies_s]
        return statistics.median(per_run) * 1000 if per_run else float("nan")


def percentile(values: Sequence[float], quantile: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(quantile * (len(ordered) - 1))))
    return ordered[index]


async def interleaved(
    configurations: dict[str, Callable[[], Awaitable[Sample]]],
    *,
    rounds: int,
    before_each: Callable[[], Awaitable[None]] | None = None,
) -> dict[str, Result]:
    """Run every configuration once per round; the order rotates each round so no configuration always goes first."""
    names = list(configurations)
    results = {name: Result(name) for name in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            if before_each is not None:
                await before_each()
            results[name].samples.append(await configurations[name]())
    return results


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.MULTILINE)
        cpu = found.group(1).strip() if found else cpu
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return (
        f"{platform.node()}: {os.cpu_count()} vCPU ({cpu}), Python {platform.python_version()}, "
        f"load average at the end {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}"
    )


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def update_readme_section(title: str, body: str, readme: Path = README) -> None:
    """Replace the ``## {title}`` section (up to the next ``## `` heading) or append it; keep all other sections."""
    text = readme.read_text(encoding="utf-8") if readme.exists() else "# Benchmarks\n"
    section = f"## {title}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}[ \t]*\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    readme.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


class Stopwatch:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start
