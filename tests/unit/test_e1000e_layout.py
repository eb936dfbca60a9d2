"""The e1000e driver's register layout, id registry and queue hooks (no
device needed; the driver itself is tested in the QEMU guest,
tests/vm/test_vm_e1000e.py)."""
from ixypy.drivers import driver_for
from ixypy.drivers.e1000e import DEVICE_IDS, MTA, TARC, TXDCTL, E1000eDevice
from ixypy.drivers.intel import QueueRegs
from ixypy.fastpath.intel import TX_ADVANCED, TX_EXTENDED


def test_82574l_selects_e1000e():
    assert DEVICE_IDS == {0x10D3: "82574L"}
    assert driver_for(0x8086, 0x10D3) is E1000eDevice


def test_ring_registers_and_per_queue_registers():
    assert QueueRegs.block(E1000eDevice.rx_queue_block(0)) == QueueRegs(
        bal=0x2800, bah=0x2804, len=0x2808, head=0x2810, tail=0x2818, ctl=0x2828)
    assert QueueRegs.block(E1000eDevice.tx_queue_block(0)) == QueueRegs(
        bal=0x3800, bah=0x3804, len=0x3808, head=0x3810, tail=0x3818, ctl=0x3828)
    assert (TXDCTL(0), TARC(0), TARC(1), MTA(0), MTA(127)) == (0x3828, 0x3840, 0x3940, 0x5200, 0x53FC)


def test_extended_tx_descriptor_type_and_no_queue_enable_bit():
    # DTYP 23:20 = 0001b (extended TCP/IP data), DEXT, RS, IFCS, EOP; the
    # advanced type differs only in DTYP (0011b)
    assert TX_EXTENDED == 0x2B100000 and TX_ADVANCED == 0x2B300000
    assert (E1000eDevice.TX_CMD_TYPE, E1000eDevice.TX_PAYLEN, E1000eDevice.QUEUE_ENABLE) == (TX_EXTENDED, False, 0)
