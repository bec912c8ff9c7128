"""The event-loop bridge of the Rust drivers (crates/aura-py/src/bridge.rs):
futures settled in batches on the loop thread, cancellation, several loops.
Exercised through the auradb:// backend against the project's own server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import aura
from aura import Field, Model
from aura.server import AuraServer


class BridgeItem(Model):
    id: int = Field(primary_key=True)
    label: str


async def _seeded(dsn: str, n: int) -> aura.Client:
    client = await aura.connect(dsn, models=[BridgeItem])
    await client.bulk_insert(BridgeItem, [BridgeItem(id=i, label=f"item-{i}") for i in range(n)])
    return client


def test_many_concurrent_awaits_each_get_their_own_result() -> None:
    async def main() -> list[str | None]:
        with AuraServer(port=0, log_to_stderr=False) as server:
            client = await _seeded(server.dsn, 300)
            try:
                found = await asyncio.gather(*(client.BridgeItem.find(id=i) for i in range(300)))
            finally:
                await client.close()
        return [item.label if item else None for item in found]

    assert asyncio.run(main()) == [f"item-{i}" for i in range(300)]


def test_a_cancelled_await_leaves_the_connection_usable_and_the_loop_clean() -> None:
    errors: list[dict[str, Any]] = []

    async def main() -> tuple[int, str]:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: errors.append(ctx))
        with AuraServer(port=0, log_to_stderr=False) as server:
            client = await _seeded(server.dsn, 50)
            try:
                pending = [asyncio.ensure_future(client.BridgeItem.find(id=i)) for i in range(20)]
                for task in pending[::2]:
                    task.cancel()
                done = await asyncio.gather(*pending, return_exceptions=True)
                cancelled = sum(isinstance(d, asyncio.CancelledError) for d in done)
                again = await client.BridgeItem.find(id=7)
            finally:
                await client.close()
        assert again is not None
        return cancelled, again.label

    assert asyncio.run(main()) == (10, "item-7")
    assert errors == []


@pytest.mark.parametrize("runs", [3])
def test_each_new_event_loop_gets_its_own_wake_up(runs: int) -> None:
    with AuraServer(port=0, log_to_stderr=False) as server:

        async def once(n: int) -> int:
            client = await aura.connect(server.dsn, models=[BridgeItem])
            try:
                await client.insert(BridgeItem(id=1000 + n, label="x"))
                return await client.BridgeItem.count()
            finally:
                await client.close()

        assert [asyncio.run(once(n)) for n in range(runs)] == [1, 2, 3]


def test_awaiting_outside_a_running_loop_is_a_clear_error() -> None:
    from aura import _core

    conn = _core.AuraDbConnection("127.0.0.1", 1)
    with pytest.raises(RuntimeError, match="no running event loop"):
        conn.ping()
