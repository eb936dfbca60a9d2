"""The forwarding loop the vector apps share: receive a batch, let the app
process it (whole batches only), send; what the tx ring does not take is
sent first next time (a batch is processed once)."""
from __future__ import annotations

from typing import Callable, Optional, Sequence, Tuple

from ..device import RxQueue, TxQueue
from ..fastpath.batch import PacketBatch

Step = Callable[[PacketBatch], object]


def forward(pairs: Sequence[Tuple[RxQueue, TxQueue, Step]], batch_size: int = 256,
            stop: Callable[[], bool] = lambda: False, count: Optional[int] = None,
            progress: Optional[Callable[[int], None]] = None) -> int:
    """pairs: (rx queue, tx queue, process) per direction. Returns packets
    sent; progress(sent so far) after each tx (ixypy.processes.Progress.sent)."""
    lanes = [(rxq, txq, step, PacketBatch(batch_size)) for rxq, txq, step in pairs]
    sent = 0
    try:
        while not stop() and (count is None or sent < count):
            for rxq, txq, step, batch in lanes:
                if not len(batch):
                    if not rxq.rx(batch):
                        continue
                    step(batch)
                sent += txq.tx(batch)
                if progress is not None:
                    progress(sent)
    finally:
        for lane in lanes:
            lane[3].free()
    return sent
