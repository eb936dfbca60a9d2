"""The README's asyncio example runs: its echo() coroutine, taken from the
README text, echoes numbered frames sent from the other end of the sim pair.
(Mutation shown to fail: `await tx.send(batch)` replaced by `batch.free()`
in the README block.)"""
from __future__ import annotations

import asyncio
import re
from pathlib import Path

import ixypy
from ixypy import PacketBatch, aio
from ixypy.packets import SEQ_OFFSET

ROOT = Path(__file__).resolve().parents[2]


def readme_block() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### asyncio"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_asyncio_example_echoes():
    code = readme_block()
    assert 'asyncio.run(echo("sim:pair1"))' in code
    namespace: dict = {}
    exec(code.replace('asyncio.run(echo("sim:pair1"))', ""), namespace)

    async def main():
        server = asyncio.create_task(namespace["echo"]("sim:pair1"))
        await asyncio.sleep(0)                            # echo() opened sim:pair1
        with ixypy.open("sim:pair0") as peer:
            pool = peer.mempool(512)
            out, inbox = PacketBatch(32), PacketBatch(64)
            out.alloc(pool, length=60)
            sent = out.stamp_u64(SEQ_OFFSET, 0)
            await aio.TxQueue(peer).send(out)
            rx = aio.RxQueue(peer)
            got = expected = bad = 0
            while got < sent:
                got += await rx.recv(inbox)
                expected, b = inbox.check_seq_u64(SEQ_OFFSET, expected)
                bad += b
                inbox.free()
        server.cancel()
        await asyncio.gather(server, return_exceptions=True)
        return got, bad

    assert asyncio.run(asyncio.wait_for(main(), 30)) == (32, 0)
