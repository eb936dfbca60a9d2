"""Device is the declared interface of every driver: its abstract methods
are what ixypy.open's caller, apps.py and the README use, and every driver
class implements all of them."""
import inspect

import pytest

from ixypy.device import Device, DeviceStats
from ixypy.drivers import supported_ids
from ixypy.drivers.intel import IntelDevice

#: what apps.py (ensure_present), cli.py, the README and the examples call on a device, and
#: what Device.close() needs of a driver
INTERFACE = {"rx_batch", "tx_batch", "flush_tx", "rx_queue", "tx_queue", "stats", "mac", "link_speed",
             "promisc", "set_promisc", "ensure_present", "_stop"}


class StubBus:
    address = "stub:0"

    def close(self):
        pass


def _implementations():
    """A body for every abstract method of Device."""
    def method(self, *args, **kwargs):
        return None
    impl = {name: method for name in INTERFACE}
    impl["mac"] = property(lambda self: "02:00:00:00:00:00")
    impl["promisc"] = property(lambda self: None)
    impl["stats"] = lambda self: DeviceStats()
    return impl


def test_the_interface_is_abstract():
    assert Device.__abstractmethods__ == INTERFACE


def test_a_complete_driver_can_be_instantiated():
    Complete = type("Complete", (Device,), _implementations())
    dev = Complete(StubBus(), 1, 1)
    try:
        assert dev.mac == "02:00:00:00:00:00" and dev.stats() == DeviceStats()
    finally:
        dev.close()


@pytest.mark.parametrize("missing", sorted(INTERFACE))
def test_a_driver_missing_one_method_cannot_be_instantiated(missing):
    impl = _implementations()
    del impl[missing]
    Incomplete = type("Incomplete", (Device,), impl)
    with pytest.raises(TypeError, match=missing):
        Incomplete(StubBus(), 1, 1)


def test_intel_family_steps_are_abstract():
    assert {"rx_queue_block", "tx_queue_block", "_global_reset", "_init_rx", "_enable_rx"} <= IntelDevice.__abstractmethods__


def test_every_driver_implements_the_whole_interface():
    drivers = {cls for cls, _ in supported_ids().values()}
    assert {cls.__name__ for cls in drivers} == {"IxgbeDevice", "IgbDevice", "IgbvfDevice", "E1000eDevice", "VirtioDevice"}
    for cls in drivers:
        assert not inspect.isabstract(cls), f"{cls.__name__} leaves {sorted(cls.__abstractmethods__)} abstract"
