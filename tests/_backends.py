"""Run the memory conformance tests over ``auradb://`` too: the same
engine, served by the project's AWP 1 server on a free local port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import pytest

import aura
from aura.server import AuraServer

BACKENDS = ["memory", "auradb"]


@asynccontextmanager
async def connect_backend(kind: str, models: Iterable[type[Any]]) -> AsyncIterator[aura.Client]:
    """A client on a fresh, empty engine of the given kind."""
    if kind == "memory":
        async with aura.connect("memory://", models=list(models)) as client:
            yield client
        return
    with AuraServer(port=0, log_to_stderr=False) as server:
        async with aura.connect(server.dsn, models=list(models)) as client:
            yield client


def skip_on_auradb(client: aura.Client, reason: str) -> None:
    """Skip, visibly and with the reason, what AWP 1 cannot express."""
    if client.backend.name == "auradb":
        pytest.skip(f"auradb://: {reason}")
