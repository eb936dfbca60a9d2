"""The igb driver's register layout and id registry (no device needed; the
driver itself is tested in the QEMU guest, tests/vm/test_vm_igb.py)."""
from ixypy.drivers import driver_for, supported_ids
from ixypy.drivers.igb import DEVICE_IDS, IgbDevice, RQDPC, SRRCTL
from ixypy.drivers.intel import QueueRegs

IDS_82576 = {0x10C9, 0x10E6, 0x10E7, 0x10E8, 0x1526, 0x150A, 0x1518, 0x150D}
IDS_I350 = {0x1521, 0x1522, 0x1523, 0x1524}


def test_every_82576_and_i350_id_selects_igb():
    assert set(DEVICE_IDS) == IDS_82576 | IDS_I350
    for dev in IDS_82576 | IDS_I350:
        assert driver_for(0x8086, dev) is IgbDevice
    assert not set(DEVICE_IDS) & {dev for vendor, dev in supported_ids() if supported_ids()[(vendor, dev)][0] is not IgbDevice}


def test_queue_registers_use_the_compatible_block_below_queue_4():
    rx = [IgbDevice.rx_queue_block(n) for n in range(16)]
    tx = [IgbDevice.tx_queue_block(n) for n in range(16)]
    assert rx[:5] == [0x2800, 0x2900, 0x2A00, 0x2B00, 0xC100] and rx[15] == 0xC3C0
    assert tx[:5] == [0x3800, 0x3900, 0x3A00, 0x3B00, 0xE100] and tx[15] == 0xE3C0
    assert QueueRegs.block(rx[0]) == QueueRegs(bal=0x2800, bah=0x2804, len=0x2808, head=0x2810, tail=0x2818, ctl=0x2828)
    assert (SRRCTL(0), RQDPC(0), SRRCTL(4), RQDPC(4)) == (0x280C, 0x2830, 0xC10C, 0xC130)
