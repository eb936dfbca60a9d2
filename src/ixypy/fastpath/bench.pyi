from typing import Callable, Optional, Tuple, TypeVar

from .batch import PacketBatch
from .mempool import Mempool
from .queue import Queue

_T = TypeVar("_T")

def measured(fn: Callable[[], _T]) -> _T: ...
def bench_tx(txq: Queue, pool: Mempool, batch_size: int, packets: int, seq_offset: int = 42,
             poll_hook: Optional[object] = None) -> int: ...
def bench_rx(rxq: Queue, batch: PacketBatch, packets: int,
             poll_hook: Optional[object] = None) -> Tuple[int, int]: ...
def bench_fwd(rxq: Queue, txq: Queue, batch: PacketBatch, packets: int,
              poll_hook: Optional[object] = None) -> Tuple[int, int]: ...
def bench_fwd_ixy(rxq_a: Queue, txq_a: Queue, rxq_b: Queue, txq_b: Queue, batch: PacketBatch, packets: int,
                  poll_hook: Optional[object] = None) -> Tuple[int, int]: ...
