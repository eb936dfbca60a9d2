"""What the benchmark rigs share (rig_ixgbe, rig_igb, rig_virtio): two
devices of one model, each opened by the driver under test. Rig: one wired
to a sink (tx), one to a source filling rx at full speed (rx, and fwd's
input). Ports: ixy's forwarder set-up, both devices on a wire whose far end
is a traffic generator that fills the port's rx at full speed and counts
and drops what the port sends."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional

from ixypy import Mempool
from ixypy.device import Device
from ixypy.packets import udp_frame
from ixypy.sim import SimBus, close_model, connect, new_intel_model, source_frame
from loops import nothing


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


def rig_on(model, ends: tuple, open_device: Callable[[object, str], Device], threaded: bool) -> Rig:
    """A rig on `model` (any device model: IntelModel, VirtioSim): ends[0] wired
    to a sink, ends[1] to a source, each opened by open_device(end, wire).
    threaded: the model's worker busy-polls on the other core (wall-clock
    Mpps). Otherwise the worker is stopped after bring-up and the model runs
    only when the driver stalls, in its thread (deterministic counts)."""
    sink, source = ends
    devices: List[Device] = []

    def close() -> None:
        for dev in devices:
            dev.close()
        close_model(model)

    try:
        for end, wire in ((sink, "sink"), (source, "source")):
            connect(end, wire)
            devices.append(open_device(end, wire))
    except BaseException:
        close()
        raise
    tx, rx = devices
    pool = tx.mempool(4096)
    pool.fill(udp_frame())
    if threaded:
        return Rig(tx.tx_queue(0), rx.rx_queue(0), pool, nothing, None, close)
    model.stop()
    return Rig(tx.tx_queue(0), rx.rx_queue(0), pool, model.poll, model.poll_hook(), close)


@dataclass
class Ports:
    """Two ports a and b for ixy's forwarder (loops.python_fwd_ixy,
    bench_fwd_ixy): their queue 0s, the model's ends of their wires (for its
    counters: wire_stats), and the model's pass as in Rig."""

    rxq_a: object
    txq_a: object
    rxq_b: object
    txq_b: object
    ends: tuple
    poll: Callable[[], object]
    hook: Optional[object]
    close: Callable[[], None]


def ports_on(model, ends: tuple, open_device: Callable[[object, str], Device], threaded: bool) -> Ports:
    """Ports a and b on `model`'s ends[0] and ends[1], each wired to a
    generator (the 60-byte UDP source frame, without sequence numbers: the
    virtio-net model's sink check on a source wire would reset its source's
    counter) whose far end also takes what the port sends (a source wire's
    tx is counted and dropped). threaded: as rig_on."""
    devices: List[Device] = []

    def close() -> None:
        for dev in devices:
            dev.close()
        close_model(model)

    try:
        for end, name in zip(ends, ("a", "b")):
            end.wire_source(source_frame(), 0, -1)
            devices.append(open_device(end, f"port-{name}"))
    except BaseException:
        close()
        raise
    a, b = devices
    queues = (a.rx_queue(0), a.tx_queue(0), b.rx_queue(0), b.tx_queue(0))
    if threaded:
        return Ports(*queues, ends, nothing, None, close)
    model.stop()
    return Ports(*queues, ends, model.poll, model.poll_hook(), close)


def open_model_rig(driver: Callable[..., Device], variant: str, threaded: bool, ring: int) -> Rig:
    """driver's queues on two functions (ports) of a `variant` Intel model ("82599", "82576")."""
    sim = new_intel_model(2, busy_poll=threaded, variant=variant)

    def open_function(function, wire: str) -> Device:
        return driver(SimBus(f"sim:bench-{wire}", sim, function, wire, owns_sim=False),
                      num_rx_desc=ring, num_tx_desc=ring)

    return rig_on(sim, (sim.function(0), sim.function(1)), open_function, threaded)


def open_model_ports(driver: Callable[..., Device], variant: str, threaded: bool, ring: int) -> Ports:
    """driver's ports a and b on two functions of a `variant` Intel model, for ixy's forwarder."""
    sim = new_intel_model(2, busy_poll=threaded, variant=variant)

    def open_function(function, name: str) -> Device:
        return driver(SimBus(f"sim:bench-{name}", sim, function, "source", owns_sim=False),
                      num_rx_desc=ring, num_tx_desc=ring)

    return ports_on(sim, (sim.function(0), sim.function(1)), open_function, threaded)
