"""Several dbt invocations in one Python process: ``python dbt_session.py SPEC`` (standalone: dbt only).

A plan with waves or PARTIAL windows needs several ``dbt build`` invocations; as separate processes each
pays Python's import of dbt and its adapter again (seconds each). Here dbt is imported once and each
invocation runs through dbt's programmatic entry point (``dbtRunner``), one after the other, never two at a
time (which dbt does not support in one process). dbt logs to standard output as its CLI does; after each
invocation one line ``{"lockgate_session": {"index": i, "exit": code}}`` says how it ended (0 ok, 1 a node
failed, 2 dbt could not run, 130 interrupted), and the session stops at the first that did not succeed.

SPEC is a JSON file ``{"invocations": [[arg, ...], ...], "target_paths": [path, ...]}``. Before each
invocation after the first, the previous one's ``partial_parse.msgpack`` is copied into its target path, so
dbt does not parse the project again.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

MARKER = "lockgate_session"
PARTIAL_PARSE = "partial_parse.msgpack"
INTERRUPTED = 130


def reuse_parse(previous: Path | None, target: Path) -> None:
    """Give ``target`` (an invocation's target path) the parse of the invocation that wrote ``previous``: dbt
    looks for ``partial_parse.msgpack`` in the target path, and with a copy there re-parses nothing."""
    if previous is None or not (previous / PARTIAL_PARSE).is_file() or (target / PARTIAL_PARSE).exists():
        return
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(previous / PARTIAL_PARSE, target / PARTIAL_PARSE)


def _say(index: int, code: int) -> None:
    sys.stdout.write(json.dumps({MARKER: {"index": index, "exit": code}}) + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    from dbt.cli.main import dbtRunner  # noqa: PLC0415 - imported once, after the spec is known to be readable

    previous: Path | None = None
    for index, (args, target) in enumerate(zip(spec["invocations"], spec["target_paths"], strict=True)):
        reuse_parse(previous, Path(target))
        try:
            result = dbtRunner().invoke(list(args))
        except KeyboardInterrupt:
            _say(index, INTERRUPTED)
            return INTERRUPTED
        if isinstance(result.exception, KeyboardInterrupt):
            code = INTERRUPTED
        elif result.success:
            code = 0
        else:
            code = 2 if result.exception is not None else 1
        _say(index, code)
        if code != 0:
            return code
        previous = Path(target)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
