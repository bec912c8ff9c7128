"""Point lookups on memory:// with metrics on or off, for an instruction
count under callgrind (timing on a shared machine varies by more than the
overhead being measured; instructions do not):

    for m in on off; do for n in 1000 3000; do
      valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.$m.$n \\
        .venv/bin/python benches/lookups_callgrind.py $m $n 2>&1 | grep refs
    done; done

Instructions per lookup = (refs at 3000 - refs at 1000) / 2000, per setting;
the set-up cost cancels out in the difference.
"""

from __future__ import annotations

import asyncio
import sys

import aura
from aura import Field, Model


class CgUser(Model):
    id: int = Field(primary_key=True)
    name: str
    email: str = Field(unique=True)


async def main(metrics: bool, lookups: int) -> None:
    async with aura.connect("memory://", models=[CgUser], telemetry={"metrics": metrics}) as db:
        users = [CgUser(id=i, name=f"n{i}", email=f"u{i}@x") for i in range(2000)]
        await db.bulk_insert(CgUser, users)
        q = db.query(CgUser)
        for k in range(lookups):
            await q.where(CgUser.id == (k * 7) % 2000).one()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] == "on", int(sys.argv[2])))
