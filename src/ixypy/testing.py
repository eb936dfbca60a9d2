"""ixypy's pytest plugin: the sim devices as fixtures for your own tests,
with faults to inject. Installed with ixypy (entry point ``pytest11``), so a
test suite only names the fixtures::

    from ixypy.testing import faults

    def test_my_forwarder_survives_a_pulled_cable(ixypy_pair):
        a, b = ixypy_pair
        faults(b).unplug()
        ...                       # run your app; nothing reaches b
        faults(b).plug()

Fixtures (each device is opened for the test and closed after it; the test
then fails if the device model logged a driver error):

* ``ixypy_sink``: a port whose transmitted frames are counted and dropped.
* ``ixypy_source``: a port whose rx a traffic generator fills at full speed
  (60-byte UDP frames to the port's MAC, a sequence number at
  ``ixypy.packets.SEQ_OFFSET``).
* ``ixypy_pair``: two ports cabled to each other, ``(a, b)``.
* ``ixypy_sim``: the factory behind them, ``ixypy_sim.open(wire, **open_kw)``
  for other wires (``"loop"``) or options (``num_rx_desc=64``,
  ``interrupts=True``) and ``ixypy_sim.pair(**open_kw)``.
* ``ixypy_sim_kind``: the NIC the fixtures give: ``"ixgbe"`` (the 82599
  model, default), ``"igb"`` (82576) or ``"virtio"`` (legacy virtio-net:
  sink, source and loop only). Parametrize it to run a test on several::

      @pytest.mark.parametrize("ixypy_sim_kind", ["ixgbe", "igb"])
      def test_on_both(ixypy_pair): ...

:func:`faults` gives what a test does to a sim port: see :class:`Faults`.
"""
from __future__ import annotations

from typing import Any, Iterator, List, Tuple, cast

import pytest

import ixypy
from .device import Device
from .errors import UnsupportedDevice
from .sim import SimBus

#: address prefix of each kind of sim NIC (ixypy.sim)
KINDS = {"ixgbe": "", "igb": "igb-", "virtio": "virtio-"}


class Faults:
    """What a test does to a sim port (its model function, not the driver):

    * ``unplug()`` / ``plug()``: the cable out (link down, nothing crosses) and back in;
    * ``drop_rx(n)``: the next n arriving frames are dropped, as by a full rx
      ring, and counted (the Intel NICs' ``rx_dropped``; virtio-net has no
      drop counter, its model's ``wire_stats()`` counts them);
    * ``stall()`` / ``resume()``: the DMA engines stop and go on (tx is not
      sent, rx not received; ``flush_tx`` times out, naming the register on
      the Intel NICs);
    * ``remove()``: surprise removal for good: register reads return all ones,
      no DMA; the driver then raises ``ixypy.errors.DeviceGone`` (``stats()``,
      ``flush_tx()``, the app loops within a second) and ``close()`` still
      releases everything.
    """

    def __init__(self, device: Device) -> None:
        function = getattr(device.bus, "function", None)
        if function is None or not hasattr(function, "remove"):
            raise UnsupportedDevice(f"{device.address} is not a sim device with faults to inject",
                                    "faults are injected into the sim devices (sim:sink, sim:igb-pair0, sim:virtio-loop, ...)")
        self._function = function

    def unplug(self) -> None:
        """Pull the cable out: the link goes down and nothing crosses."""
        self._function.plug(False)

    def plug(self) -> None:
        """Plug the cable back in: the link is as the driver set it up."""
        self._function.plug(True)

    def drop_rx(self, n: int) -> None:
        """Drop the next n frames that arrive (counted, see the class)."""
        self._function.drop_rx(n)

    def stall(self) -> None:
        """Stop the DMA engines: no descriptor is fetched or written back."""
        self._function.stall(True)

    def resume(self) -> None:
        """Let stalled DMA engines go on."""
        self._function.stall(False)

    def remove(self) -> None:
        """Surprise removal, for good: reads return all ones, no DMA."""
        self._function.remove()


def faults(device: Device) -> Faults:
    """The faults to inject into a sim device (see :class:`Faults`)."""
    return Faults(device)


class SimDevices:
    """Opens sim devices of one kind for a test; :meth:`close_all` closes
    them and returns what their models logged as driver errors."""

    def __init__(self, kind: str) -> None:
        if kind not in KINDS:
            raise UnsupportedDevice(f"no sim NIC of kind {kind!r}", "the sim kinds are ixgbe, igb and virtio")
        self.prefix = KINDS[kind]
        self.devices: List[Device] = []

    def open(self, wire: str, **open_kw: Any) -> Device:
        """The sim port on `wire` ("sink", "source", "loop", "pair0", "pair1")."""
        dev = ixypy.open(f"sim:{self.prefix}{wire}", **open_kw)
        self.devices.append(dev)
        return dev

    def pair(self, **open_kw: Any) -> Tuple[Device, Device]:
        """Both ends of one cable."""
        return self.open("pair0", **open_kw), self.open("pair1", **open_kw)

    def close_all(self) -> List[str]:
        for dev in self.devices:
            dev.close()
        return [f"{dev.address}: {e}" for dev in self.devices for e in cast(SimBus, dev.bus).model_errors()]


@pytest.fixture
def ixypy_sim_kind() -> str:
    return "ixgbe"


@pytest.fixture
def ixypy_sim(ixypy_sim_kind: str) -> Iterator[SimDevices]:
    sims = SimDevices(ixypy_sim_kind)
    yield sims
    errors = sims.close_all()
    if errors:
        pytest.fail("the device model logged driver errors:\n" + "\n".join(errors), pytrace=False)


@pytest.fixture
def ixypy_sink(ixypy_sim: SimDevices) -> Device:
    return ixypy_sim.open("sink")


@pytest.fixture
def ixypy_source(ixypy_sim: SimDevices) -> Device:
    return ixypy_sim.open("source")


@pytest.fixture
def ixypy_pair(ixypy_sim: SimDevices) -> Tuple[Device, Device]:
    return ixypy_sim.pair()
