"""The ixgbe benchmark rig: two 82599 model ports, one wired to a sink
(tx), one to a source filling rx at full speed (rx, and fwd's input)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from ixypy import Mempool
from ixypy.drivers.ixgbe import IxgbeDevice
from ixypy.packets import SEQ_OFFSET, udp_frame
from ixypy.sim import SimBus, close_model, new_model, source_frame


@dataclass
class Rig:
    """What a benchmark needs: the queues, a filled tx pool, and the model's
    pass for the deterministic mode (poll: from Python; hook: from C)."""

    txq: object
    rxq: object
    pool: Mempool
    poll: Callable[[], object]
    hook: Optional[object]
    close: Callable[[], None]


def nothing() -> None:
    """poll() while the model runs on its own thread: just try again."""


def open_rig(threaded: bool, ring: int = 512) -> Rig:
    """threaded: the model's worker busy-polls on the other core (wall-clock
    Mpps). Otherwise the worker is stopped after bring-up and the model runs
    only when the driver stalls, in its thread (deterministic counts)."""
    sim = new_model(2, busy_poll=threaded)
    sink, source = sim.port(0), sim.port(1)
    sink.wire_sink()
    source.wire_source(source_frame(), 0, SEQ_OFFSET)
    tx = IxgbeDevice(SimBus("sim:bench-sink", sim, sink, "sink", owns_sim=False), num_rx_desc=ring, num_tx_desc=ring)
    rx = IxgbeDevice(SimBus("sim:bench-source", sim, source, "source", owns_sim=False), num_rx_desc=ring, num_tx_desc=ring)
    pool = tx.mempool(4096)
    pool.fill(udp_frame())

    def close() -> None:
        tx.close()
        rx.close()
        close_model(sim)

    if threaded:
        return Rig(tx.tx_queue(0), rx.rx_queue(0), pool, nothing, None, close)
    sim.stop()
    return Rig(tx.tx_queue(0), rx.rx_queue(0), pool, sim.poll, sim.poll_hook(), close)
