"""The store's wake-up NOTIFY is coalesced: a burst of appends sends a couple of NOTIFYs, never one per append,
and the last append is always followed by one; a failing NOTIFY is only a missed hint."""

from __future__ import annotations

import asyncio

from services.shared.eventstore.postgres import _Notifier


async def test_a_burst_of_appends_sends_few_notifies_and_the_last_one_is_covered() -> None:
    sent: list[int] = []
    pokes = 0
    gate = asyncio.Event()

    async def send() -> None:
        sent.append(pokes)
        await gate.wait()  # a NOTIFY in flight while more appends come in

    notifier = _Notifier(send, gather_s=0)
    for _ in range(100):
        pokes += 1
        notifier.poke()
        await asyncio.sleep(0)
    gate.set()
    await notifier.close()
    # One NOTIFY for the first appends (those of the moment it waited), one more for the rest that came while it
    # was in flight: it is sent after the last of them, so no append is left without a NOTIFY after it.
    assert len(sent) == 2
    assert sent[0] < 100
    assert sent[1] == 100


async def test_a_poke_after_an_idle_notifier_sends_again() -> None:
    sent = 0

    async def send() -> None:
        nonlocal sent
        sent += 1

    notifier = _Notifier(send)
    notifier.poke()
    await notifier.close()
    notifier.poke()
    await notifier.close()
    assert sent == 2


async def test_a_failing_notify_does_not_escape() -> None:
    async def send() -> None:
        raise ConnectionError("PostgreSQL went away")

    notifier = _Notifier(send)
    notifier.poke()
    await notifier.close()  # no exception: followers poll anyway
