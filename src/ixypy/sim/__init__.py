"""The sim device: ixypy's ixgbe driver on the 82599 device model, or its
igb driver on the 82576 model; no hardware, no root, no hugepages needed.

Addresses name what is at the other end of the simulated cable:

* ``sim:sink`` (also ``sim:ixgbe``): transmitted frames are counted and dropped.
* ``sim:source``: a traffic generator fills rx at full speed with 60-byte UDP
  frames carrying a 64-bit sequence number (at SEQ_OFFSET), of
  DEFAULT_SOURCE_FLOWS flows in turn (source IPs 10.0.0.2 upward, as
  ``ixypy pktgen --flows``), so RSS spreads them; ``sim:source,flows=N``
  sends N (1 to MAX_SOURCE_FLOWS).
* ``sim:loop``: a loopback plug, tx comes back on rx.
* ``sim:pair0`` / ``sim:pair1``: the two ends of one cable between two ports.
* ``sim:virtio-sink``, ``sim:virtio-source``, ``sim:virtio-loop``: the same
  wires on the legacy virtio-net model (ixypy's virtio driver), see sim.virtio.

With an ``igb-`` prefix (``sim:igb-sink``, ``sim:igb-source``,
``sim:igb-loop``, ``sim:igb-pair0`` / ``sim:igb-pair1``) the port is an 82576.

Options follow the name, each as ``,key=value`` (as DPDK's device
arguments): ``flows`` on a source wire (``sim:igb-source,flows=1``); on the
Intel loop and pair wires, the propagation delay of the frames the port sends
(``sim:pair0,delay=20us,jitter=2us``, ``sim:loop,delay=20us``), times in ns,
us or ms: each frame reaches the other end no sooner than its departure plus
``delay`` plus a jitter drawn uniformly from [-jitter, +jitter], and never
before the frame sent before it (frames stay in order); ``delay_frames=N``
frames at most are in flight (DEFAULT_DELAY_FRAMES), one more is dropped and
counted (the port's wire_stats()["delay_drops"]). On a pair each end's
options are its own direction's.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Dict, List, NamedTuple, Tuple

from ..fastpath.regs import Bar, PortIo
from ..bus import Bus
from .. import pci
from ..pci.config import (MSIX_ENABLE, MSIX_MASKALL, PCI_MSIX_BIR, PCI_MSIX_ENTRY_CTRL_MASKBIT, PCI_MSIX_ENTRY_SIZE,
                          PCI_MSIX_ENTRY_VECTOR_CTRL, PCI_MSIX_FLAGS, PCI_MSIX_TABLE)
from ..errors import DeviceBusy, DeviceNotFound, InvalidAddress
from ..device import format_mac
from ..memory import VirtualAllocator
from ..packets import SEQ_OFFSET, SRC_IP, udp_frame
from ..fastpath.queue import set_idle_hook
from ._model import DEFAULT_DELAY_FRAMES, MAX_SOURCE_FLOWS, IntelFunction, IntelModel, Model, engine_help_hook

# a queue that finds no work runs a sweep of the models itself (sim_worker.h)
set_idle_hook(engine_help_hook())

INTEL_WIRES = ("sink", "source", "loop", "pair0", "pair1")
# address prefix -> (model, its wires): "82599" and "82576" are IntelModel variants
MODELS = {"": ("82599", INTEL_WIRES), "igb-": ("82576", INTEL_WIRES),
          "virtio-": ("virtio", ("sink", "source", "loop"))}
ALIASES = {"ixgbe": "sink"}
DEFAULT_SOURCE_FLOWS = 256     # RSS's 128-entry redirection table sees each entry hit about twice
TIME_UNITS_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000}
MAX_WIRE_DELAY_NS = 1_000_000_000   # a second: longer is no cable
MAX_DELAY_FRAMES = 1 << 20
DELAY_OPTIONS = ("delay", "jitter", "delay_frames")
DELAY_WIRES = ("loop", "pair0", "pair1")     # the Intel models' wires with a delay line
BASE_MAC = bytes.fromhex("02a0c9000000")   # locally administered

# the open pairs, one per variant: both ends (and every bus opened on them)
# share one model until all are closed
_pairs: Dict[str, Tuple[IntelModel, List["SimBus"]]] = {}


def source_frame(flow: int = 0) -> bytes:
    """The frame the source wire sends: 60-byte UDP to the port's own MAC,
    so it passes the address filter without promiscuous mode; of flow `flow`
    (source IP 10.0.0.2 plus that, as the model writes it, csrc/sim/sim_flows.h)."""
    return udp_frame(dst_mac=format_mac(BASE_MAC), src_ip=str(ipaddress.IPv4Address(SRC_IP) + flow))


class SimAddress(NamedTuple):
    """A sim address, parsed: model "82599", "82576" or "virtio", the wire,
    and its options."""
    model: str
    wire: str
    flows: int = DEFAULT_SOURCE_FLOWS     # a source's flows
    delay: int = 0                        # a loop or pair: the propagation delay of the port's tx, ns
    jitter: int = 0                       # its jitter: uniform in [-jitter, +jitter] ns
    delay_frames: int = DEFAULT_DELAY_FRAMES   # frames in flight at most (the delay line's slots)


def parse(address: str) -> SimAddress:
    """The model, wire and options of a sim address: ``sim:[igb-|virtio-]WIRE[,key=value]...``."""
    name, *options = (address.split(":", 1)[1] if address.startswith("sim:") else "").split(",")
    name = ALIASES.get(name, name)
    prefix = next((p for p in MODELS if p and name.startswith(p)), "")
    model, wires = MODELS[prefix]
    wire = name[len(prefix):]
    if wire not in wires:
        raise DeviceNotFound(f"no sim device {address!r}",
                             "sim devices are sim:sink (alias sim:ixgbe), sim:source, sim:loop, sim:pair0 and sim:pair1 "
                             "(82599), the same with an igb- prefix (82576, e.g. sim:igb-sink), "
                             "and sim:virtio-sink, sim:virtio-source and sim:virtio-loop")
    return SimAddress(model, wire, **parse_options(address, wire, options, delay_line=model != "virtio"))


def parse_options(address: str, wire: str, options: List[str], delay_line: bool = True) -> Dict[str, int]:
    """The ``key=value`` options of a sim address on `wire`: flows (source
    wires); delay, jitter (ns) and delay_frames (loop and pair wires of a
    model with a delay line, `delay_line`: the Intel ones)."""
    parsed: Dict[str, int] = {}
    delay_wires = DELAY_WIRES if delay_line else ()
    for option in options:
        key, _, value = option.partition("=")
        if key == "flows" and wire == "source":
            parsed[key] = parse_count(address, key, value, MAX_SOURCE_FLOWS, "sim:source,flows=1")
        elif key == "delay_frames" and wire in delay_wires:
            parsed[key] = parse_count(address, key, value, MAX_DELAY_FRAMES, "sim:loop,delay=20us,delay_frames=64")
        elif key in DELAY_OPTIONS and wire in delay_wires:
            parsed[key] = parse_time_ns(address, key, value)
        else:
            raise InvalidAddress(f"{address}: no option {key!r} on a {wire} wire",
                                 "options are flows (source wires: `sim:source,flows=N`) and delay, jitter, "
                                 "`delay_frames` (the Intel models' loop and pair wires: "
                                 "`sim:pair0,delay=20us,jitter=2us`)")
    return parsed


def parse_count(address: str, key: str, value: str, most: int, example: str) -> int:
    """`value` of option `key` as a count, 1 to `most`."""
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= most:
        raise InvalidAddress(f"{address}: {key}={value!r} is no count of {key}",
                             f"give 1 to {most}, e.g. `{example}`")
    return int(value)


def parse_time_ns(address: str, key: str, value: str) -> int:
    """`value` of option `key`, a time such as 20us, 1.5ms or 500ns, in ns."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ns|us|ms)", value, re.ASCII)
    ns = round(float(match[1]) * TIME_UNITS_NS[match[2]]) if match else -1
    if not 0 <= ns <= MAX_WIRE_DELAY_NS:
        raise InvalidAddress(f"{address}: {key}={value!r} is no time",
                             f"give a number and a unit, ns, us or ms (at most 1000ms), e.g. {key}=20us")
    return ns


# One IOMMU domain for every model in the process, as one VFIO container
# serves every real NIC: a buffer received on one sim device can be sent on
# another (forwarding).
_models: List[Model] = []
_dma_regions: Dict[int, int] = {}      # address -> length


def new_intel_model(nfunctions: int, busy_poll: bool = False, variant: str = "82599") -> IntelModel:
    """A started Intel model with nfunctions PCI functions (ports) of variant
    ("82599" or "82576") that sees all of the process's sim DMA memory."""
    return register_model(IntelModel(nfunctions, BASE_MAC, variant), busy_poll)


def register_model(sim: Model, busy_poll: bool = False) -> Model:
    """Start a model (an 82599/82576 IntelModel or a VirtioSim) in the process's DMA domain."""
    for address, length in _dma_regions.items():
        sim.dma_map(address, address, length)
    sim.set_busy_poll(busy_poll)
    sim.start()
    _models.append(sim)
    return sim


def close_model(sim: Model) -> None:
    _models.remove(sim)
    sim.close()


def _dma_map(address: int, length: int) -> None:
    _dma_regions[address] = length
    for sim in _models:
        sim.dma_map(address, address, length)


def _dma_unmap(address: int, length: int) -> None:
    del _dma_regions[address]
    for sim in _models:
        sim.dma_unmap(address, length)


def attach(address: str) -> "SimBus":
    """A Bus for the model function that address names (a new model, or the
    shared one of a pair)."""
    parsed = parse(address)
    model, wire, flows = parsed.model, parsed.wire, parsed.flows
    if model == "virtio":
        from . import virtio

        return virtio.attach(address, wire, flows)
    if wire.startswith("pair"):
        if model not in _pairs:
            sim = new_intel_model(2, variant=model)
            sim.function(0).wire_pair(sim.function(1))
            _pairs[model] = (sim, [])
        sim, ends = _pairs[model]
        if any(bus.wire == wire and not bus.closed for bus in ends):
            raise DeviceBusy(f"{address} is already open in this process", "close it first, or open the other end")
        end = sim.function(int(wire[-1]))
        set_wire_delay(end, parsed)
        bus = SimBus(address, sim, end, wire)
        ends.append(bus)
        return bus
    sim = new_intel_model(1, variant=model)
    connect(sim.function(0), wire, flows=flows)
    if wire == "loop":
        set_wire_delay(sim.function(0), parsed)
    return SimBus(address, sim, sim.function(0), wire)


def set_wire_delay(end: IntelFunction, parsed: SimAddress) -> None:
    """The propagation delay of `end`'s tx as the address asks (none: no delay line)."""
    end.set_wire_delay(parsed.delay, parsed.jitter, parsed.delay_frames)


def connect(end, wire: str, *sink_args, flows: int = 1) -> None:
    """Put `end` (an IntelFunction or a VirtioSimDevice) on the wire named `wire`:
    "source" (of `flows` flows), "loop", or else "sink" (its wire_sink(*sink_args))."""
    if wire == "source":
        end.wire_source(source_frame(), 0, SEQ_OFFSET, flows)
    elif wire == "loop":
        end.wire_pair(end)
    else:
        end.wire_sink(*sink_args)


# where the kernel points MSI-X messages on x86 (the local APICs' window);
# the models deliver to eventfds, this only fills the table as Linux would
MSI_ADDRESS = 0xFEE00000


class SimBus(Bus):
    """A model's PCI function (``function``) as a driver sees it: BAR0,
    config space, DMA memory whose DMA address is its virtual address, and
    MSI-X vectors signalled on eventfds (as vfio-pci does: attach_irqs)."""

    supports_interrupts = True

    def __init__(self, address: str, sim: IntelModel, function: IntelFunction, wire: str, owns_sim: bool = True) -> None:
        self.address = address
        self.owns_sim = owns_sim
        self.sim = sim
        self.function = function
        self.wire = wire
        self.ids = (self.function.config_read(0, 2), self.function.config_read(2, 2))
        self.dma = VirtualAllocator(_dma_map, _dma_unmap)
        self._final_errors = None
        self.closed = False

    def model_errors(self) -> list:
        """What the model refused (see csrc/sim/intel_model.h), also after close."""
        return self.function.errors() if self._final_errors is None else self._final_errors

    def bar(self, index: int) -> Bar:
        if index != 0:
            raise DeviceNotFound(f"the sim {self.sim.variant} has no BAR{index} modelled")
        return Bar(ops=self.function.reg_ops(), keepalive=self.function)

    def ioport(self, index: int) -> PortIo:
        raise DeviceNotFound(f"the sim {self.sim.variant} has no I/O-port BAR")

    def msix_vectors(self) -> int:
        return self.function.msix_vectors()

    def attach_irqs(self, eventfds) -> None:
        """What VFIO_DEVICE_SET_IRQS does for vectors 0..n-1: each signals its
        eventfd, and on a function with an MSI-X capability (the virtio-net
        model's; the Intel model has none) MSI-X is enabled as the kernel
        does it (Linux msix_capability_init): Enable with the Function Mask
        set, the vectors' table entries written and unmasked, the Function
        Mask cleared."""
        for vector, fd in enumerate(eventfds):
            self.function.set_irq_eventfd(vector, fd)
        self._irq_count = len(eventfds)
        cap = pci.msix_capability(self)
        if cap:
            control = self.config_read(cap + PCI_MSIX_FLAGS, 2)
            self.config_write(cap + PCI_MSIX_FLAGS, 2, control | MSIX_ENABLE | MSIX_MASKALL)
            table, offset = self._msix_table(cap)
            for vector in range(len(eventfds)):
                at = offset + PCI_MSIX_ENTRY_SIZE * vector
                table.write32(at, MSI_ADDRESS)
                table.write32(at + 4, 0)
                table.write32(at + 8, vector)
                table.write32(at + PCI_MSIX_ENTRY_VECTOR_CTRL, 0)
            self.config_write(cap + PCI_MSIX_FLAGS, 2, (control | MSIX_ENABLE) & ~MSIX_MASKALL)

    def detach_irqs(self) -> None:
        """What VFIO_DEVICE_SET_IRQS with count 0 does: the vectors masked and
        MSI-X disabled (where the function has the capability), the eventfds
        detached."""
        count = getattr(self, "_irq_count", 0)
        cap = pci.msix_capability(self) if count else 0
        if cap and pci.msix_enabled(self):
            table, offset = self._msix_table(cap)
            for vector in range(count):
                table.write32(offset + PCI_MSIX_ENTRY_SIZE * vector + PCI_MSIX_ENTRY_VECTOR_CTRL,
                              PCI_MSIX_ENTRY_CTRL_MASKBIT)
            control = self.config_read(cap + PCI_MSIX_FLAGS, 2)
            self.config_write(cap + PCI_MSIX_FLAGS, 2, control & ~(MSIX_ENABLE | MSIX_MASKALL))
        for vector in range(count):
            self.function.set_irq_eventfd(vector, -1)
        self._irq_count = 0

    def _msix_table(self, cap: int) -> Tuple[Bar, int]:
        """The BAR holding the MSI-X table and the table's offset in it."""
        where = self.config_read(cap + PCI_MSIX_TABLE, 4)
        return self.bar(where & PCI_MSIX_BIR), where & ~PCI_MSIX_BIR

    def config_read(self, offset: int, size: int) -> int:
        return self.function.config_read(offset, size)

    def config_write(self, offset: int, size: int, value: int) -> None:
        self.function.config_write(offset, size, value)

    def close(self) -> None:
        super().close()
        self.closed = True
        if not self.owns_sim:
            return
        peers = [self]
        if self.wire.startswith("pair"):
            _, ends = _pairs[self.sim.variant]
            if not all(bus.closed for bus in ends):
                return
            del _pairs[self.sim.variant]
            peers = ends
        for bus in peers:
            bus._final_errors = bus.function.errors()
        close_model(self.sim)
