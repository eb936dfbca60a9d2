"""Driver lookup for virtio ids: pure functions, no device touched."""
import pytest

from ixypy.drivers import driver_for
from ixypy.drivers.virtio import VirtioDevice
from ixypy.errors import UnsupportedDevice


def test_transitional_and_modern_virtio_net_have_a_driver():
    assert driver_for(0x1AF4, 0x1000) is VirtioDevice
    assert driver_for(0x1AF4, 0x1041) is VirtioDevice


def test_other_ids_are_refused():
    with pytest.raises(UnsupportedDevice, match="10ec:8139"):
        driver_for(0x10EC, 0x8139)
    with pytest.raises(UnsupportedDevice, match="virtio device of type 9, not a network device") as e:
        driver_for(0x1AF4, 0x1049)
    assert "virtio-net only" in e.value.hint
