"""Driver lookup for virtio ids: pure functions, no device touched."""
import pytest

from ixypy.drivers import driver_for
from ixypy.drivers.virtio import VirtioDevice
from ixypy.errors import UnsupportedDevice


def test_legacy_virtio_net_has_a_driver():
    assert driver_for(0x1AF4, 0x1000) is VirtioDevice


def test_modern_only_virtio_net_is_refused_with_the_reason():
    with pytest.raises(UnsupportedDevice, match="modern-only virtio-net") as e:
        driver_for(0x1AF4, 0x1041)
    assert "disable-modern=on" in e.value.hint


def test_other_ids_are_refused():
    with pytest.raises(UnsupportedDevice, match="10ec:8139"):
        driver_for(0x10EC, 0x8139)
    with pytest.raises(UnsupportedDevice, match="modern-only virtio device type 9"):
        driver_for(0x1AF4, 0x1049)
