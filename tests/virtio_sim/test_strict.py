"""What a real legacy virtio-net device would not accept: the model records
it in its error log and refuses (VirtIO 1.x, 4.1.4.8, 3.1.2, 2.7)."""
import struct

import pytest

import ixypy
from ixypy.packets import udp_frame

from .conftest import (ACKNOWLEDGE, CMD_IO, DESC_F_NEXT, DESC_F_WRITE, DEVICE_STATUS, DRIVER, DRIVER_OK,
                       F_ANY_LAYOUT, GUEST_FEATURES, HOST_FEATURES, ISR_STATUS, NEEDS_RESET, PCI_COMMAND, QUEUE_NOTIFY, QUEUE_PFN, QUEUE_SEL,
                       RawDriver, buffer)

TX = 1


@pytest.fixture
def raw(model):
    return RawDriver(model)


def one_frame_tx(raw):
    """A running device with a tx ring holding one (header, frame) chain, not yet offered."""
    raw.init()
    ring = raw.queue(TX)
    raw.driver_ok()
    ring.desc(0, buffer(raw.sim, bytes(10)), 10, DESC_F_NEXT, 1)
    ring.desc(1, buffer(raw.sim, udp_frame()), 60)
    return ring


@pytest.mark.parametrize("offset, width, register", [
    (DEVICE_STATUS, 2, "DEVICE_STATUS"),      # would read ISR too, and clear it
    (QUEUE_PFN, 2, "QUEUE_PFN"),
    (QUEUE_SEL, 4, "QUEUE_SEL"),
    (21, 2, "mac[1]"),                         # the mac is read a byte at a time
])
def test_wrong_width_read_is_refused(raw, offset, width, register):
    assert raw.dev.io_read(offset, width) == (1 << 8 * width) - 1
    assert raw.dev.errors() == [f"{width}-byte read of {register} at {offset:#x}: the register is "
                                f"{ {DEVICE_STATUS: 1, QUEUE_PFN: 4, QUEUE_SEL: 2, 21: 1}[offset]} bytes"]


def test_wrong_width_write_through_the_drivers_port_is_refused():
    with ixypy.open("sim:virtio-sink") as dev:
        dev.transport.port.write32(QUEUE_NOTIFY, 1)
        assert dev.transport.port.read16(ISR_STATUS) == 0xFFFF
        assert dev.bus.model_errors() == [
            "4-byte write of QUEUE_NOTIFY at 0x10: the register is 2 bytes",
            "2-byte read of ISR_STATUS at 0x13: the register is 1 bytes"]


def test_status_bits_in_order_only(raw):
    raw.dev.io_write(DEVICE_STATUS, 1, DRIVER)
    assert raw.dev.io_read(DEVICE_STATUS, 1) == 0
    raw.dev.io_write(DEVICE_STATUS, 1, ACKNOWLEDGE)
    raw.dev.io_write(DEVICE_STATUS, 1, ACKNOWLEDGE | DRIVER | DRIVER_OK)
    assert raw.dev.io_read(DEVICE_STATUS, 1) == ACKNOWLEDGE
    assert raw.dev.errors() == ["DEVICE_STATUS: DRIVER without ACKNOWLEDGE",
                                "DEVICE_STATUS: DRIVER_OK before GUEST_FEATURES was written"]


def test_features_not_offered_are_refused(raw):
    raw.init(features=1 << 0)                  # VIRTIO_NET_F_CSUM: not offered
    assert raw.dev.io_read(GUEST_FEATURES, 4) == 0
    assert raw.dev.errors() == ["GUEST_FEATURES 0x1: bits 0x1 were not offered"]


def test_queue_pfn_before_features_is_refused(raw):
    raw.dev.config_write(PCI_COMMAND, 2, CMD_IO)
    raw.dev.io_write(DEVICE_STATUS, 1, ACKNOWLEDGE)
    raw.dev.io_write(DEVICE_STATUS, 1, ACKNOWLEDGE | DRIVER)
    raw.queue(TX)
    assert raw.dev.io_read(QUEUE_PFN, 4) == 0
    assert raw.dev.errors() == [f"QUEUE_PFN for queue 1 before the features were negotiated (status {0x3:#x})"]


def test_ring_outside_the_dma_map_is_refused(raw):
    raw.init()
    raw.dev.io_write(QUEUE_SEL, 2, TX)
    raw.dev.io_write(QUEUE_PFN, 4, 0x1234)
    assert raw.dev.io_read(QUEUE_PFN, 4) == 0
    assert raw.dev.errors()[0].startswith("QUEUE_PFN for queue 1: ring 0x1234000+")


def test_notify_of_a_queue_without_ring(raw):
    raw.init()
    raw.driver_ok()
    raw.dev.io_write(QUEUE_NOTIFY, 2, 2)
    assert raw.dev.errors() == ["QUEUE_NOTIFY for queue 2, which has no ring (QUEUE_PFN 0)"]


def test_notify_without_bus_mastering_does_no_dma(raw):
    raw.init(bus_master=False)
    ring = raw.queue(TX)
    raw.driver_ok()
    ring.desc(0, buffer(raw.sim, bytes(70)), 70)
    ring.offer(0)
    raw.dev.io_write(QUEUE_NOTIFY, 2, TX)
    raw.sim.poll()
    assert ring.used_idx() == 0 and raw.dev.wire_stats()["tx_packets"] == 0
    assert raw.dev.errors() == ["QUEUE_NOTIFY for queue 1 while bus mastering is off: the device cannot DMA"]


def test_a_valid_chain_is_sent_after_driver_ok_only(raw):
    raw.init()
    ring = raw.queue(TX)
    ring.desc(0, buffer(raw.sim, bytes(10)), 10, DESC_F_NEXT, 1)
    ring.desc(1, buffer(raw.sim, udp_frame()), 60)
    ring.offer(0)
    raw.sim.poll()
    assert ring.used_idx() == 0                 # 3.1.1: nothing consumed before DRIVER_OK
    raw.driver_ok()
    raw.dev.io_write(QUEUE_NOTIFY, 2, TX)
    raw.sim.poll()
    assert ring.used_idx() == 1 and raw.dev.wire_stats()["tx_packets"] == 1
    assert raw.dev.errors() == []


def test_descriptor_outside_the_dma_map_breaks_the_device(raw):
    ring = one_frame_tx(raw)
    ring.desc(1, 0x5000, 60)
    ring.offer(0)
    raw.sim.poll()
    assert ring.used_idx() == 0
    assert raw.dev.io_read(DEVICE_STATUS, 1) & NEEDS_RESET
    assert raw.dev.errors() == ["queue 1: descriptor 1 buffer 0x5000+60 outside the DMA map: DEVICE_NEEDS_RESET"]


def test_descriptor_chain_loop(raw):
    ring = one_frame_tx(raw)
    ring.desc(1, buffer(raw.sim, udp_frame()), 60, DESC_F_NEXT, 0)
    ring.offer(0)
    raw.sim.poll()
    assert ring.used_idx() == 0
    assert raw.dev.errors() == [f"queue 1: the chain at descriptor 0 loops (more than {ring.num} descriptors): "
                                f"DEVICE_NEEDS_RESET"]


def test_next_index_beyond_the_queue(raw):
    ring = one_frame_tx(raw)
    ring.desc(1, buffer(raw.sim, udp_frame()), 60, DESC_F_NEXT, ring.num)
    ring.offer(0)
    raw.sim.poll()
    assert raw.dev.errors() == [f"queue 1: descriptor index {ring.num} beyond the queue's {ring.num}: "
                                f"DEVICE_NEEDS_RESET"]


def test_header_sharing_a_descriptor_without_any_layout(raw):
    ring = one_frame_tx(raw)
    ring.desc(0, buffer(raw.sim, bytes(10) + udp_frame()), 70)
    ring.offer(0)
    raw.sim.poll()
    assert ring.used_idx() == 1 and raw.dev.wire_stats()["tx_packets"] == 0
    assert raw.dev.errors() == ["transmitq: header descriptor of 70 bytes without ANY_LAYOUT (must be 10)"]


def test_writable_descriptor_in_a_tx_chain(raw):
    ring = one_frame_tx(raw)
    ring.desc(1, buffer(raw.sim, udp_frame()), 60, DESC_F_WRITE)
    ring.offer(0)
    raw.sim.poll()
    assert raw.dev.wire_stats()["tx_packets"] == 0
    assert raw.dev.errors() == ["transmitq: chain with a device-writable descriptor"]


def test_reset_clears_needs_reset(raw):
    ring = one_frame_tx(raw)
    ring.desc(1, 0x5000, 60)
    ring.offer(0)
    raw.sim.poll()
    raw.dev.clear_errors()
    raw.dev.io_write(DEVICE_STATUS, 1, 0)
    assert raw.dev.io_read(DEVICE_STATUS, 1) == 0 and raw.dev.io_read(QUEUE_PFN, 4) == 0
    assert raw.dev.errors() == []


def test_unmapping_a_live_ring_faults_the_device(raw):
    raw.init()
    ring = raw.queue(TX)
    raw.driver_ok()
    raw.sim.dma_unmap(ring.mem.address, ring.mem.size)
    assert raw.dev.io_read(QUEUE_PFN, 4) == 0
    assert raw.dev.io_read(DEVICE_STATUS, 1) & NEEDS_RESET
    assert raw.dev.errors() == ["queue 1: its ring was unmapped while in use (IOMMU fault): DEVICE_NEEDS_RESET"]


def test_ctrl_rx_needs_ctrl_vq(raw):
    raw.init(features=1 << 18)                 # CTRL_RX alone (5.1.3.1)
    assert raw.dev.errors() == ["GUEST_FEATURES: CTRL_RX without CTRL_VQ (5.1.3.1)"]


# --- message framing (2.4.4 / 2.7.4; legacy: 2.4.4.3 and 5.1.6) --------------------------

RX = 0


def dma_bytes(address: int, length: int) -> bytes:
    """Bytes of a buffer() by its DMA address (= its virtual address)."""
    for mem in buffer.keep:
        if mem.address <= address < mem.address + mem.size:
            return bytes(memoryview(mem)[address - mem.address:address - mem.address + length])
    raise KeyError(hex(address))


def test_rx_header_sharing_a_descriptor_without_any_layout(raw):
    """Without ANY_LAYOUT an rx chain of one descriptor (header and frame
    together) is refused: the header must have a descriptor of its own."""
    raw.init()
    ring = raw.queue(RX)
    tx = one_frame_tx_ring(raw)
    raw.driver_ok()
    raw.dev.wire_pair(raw.dev)
    ring.desc(0, buffer(raw.sim, bytes(2048)), 2048, DESC_F_WRITE)
    ring.offer(0)
    tx.offer(0)
    raw.sim.poll()
    assert raw.dev.wire_stats()["rx_packets"] == 0
    assert raw.dev.errors() == ["receiveq: header descriptor of 2048 bytes without ANY_LAYOUT (must be 10)"]


def one_frame_tx_ring(raw):
    """A tx ring holding one legacy (header, frame) chain at 0, not yet offered."""
    ring = raw.queue(TX)
    ring.desc(0, buffer(raw.sim, bytes(10)), 10, DESC_F_NEXT, 1)
    ring.desc(1, buffer(raw.sim, udp_frame()), 60)
    return ring


def test_any_layout_not_offered_cannot_be_negotiated(raw):
    raw.dev.offer_any_layout(False)
    assert not raw.dev.io_read(HOST_FEATURES, 4) & F_ANY_LAYOUT
    raw.init(features=F_ANY_LAYOUT)
    assert raw.dev.io_read(GUEST_FEATURES, 4) == 0
    assert raw.dev.errors() == [f"GUEST_FEATURES {F_ANY_LAYOUT:#x}: bits {F_ANY_LAYOUT:#x} were not offered"]
    raw.dev.offer_any_layout(True)
    assert raw.dev.io_read(HOST_FEATURES, 4) & F_ANY_LAYOUT


# tx chains of header (10 zero bytes) + frame, cut at these offsets into descriptors
TX_CUTS = [(), (4,), (10,), (10, 30), (3, 10, 50), (25,)]
# rx chains: the buffer's descriptor lengths (header + 60-byte frame = 70 bytes written)
RX_SPLITS = [(2048,), (10, 2038), (4, 2044), (30, 2018), (10, 20, 2018)]


@pytest.mark.parametrize("cuts", TX_CUTS, ids=lambda c: "tx-" + "-".join(map(str, c or ("one",))))
@pytest.mark.parametrize("split", RX_SPLITS, ids=lambda s: "rx-" + "-".join(map(str, s)))
def test_any_layout_takes_any_framing(raw, cuts, split):
    """With ANY_LAYOUT negotiated the model takes header and frame split
    anywhere on transmit (one descriptor, the header split, header and frame
    sharing one) and writes header + frame back to back across whatever
    descriptors the rx chain has: the frame arrives byte for byte, right
    after the 10 header bytes."""
    raw.init(features=F_ANY_LAYOUT)
    rx = raw.queue(RX)
    tx = raw.queue(TX)
    raw.driver_ok()
    raw.dev.wire_pair(raw.dev)
    frame = bytearray(udp_frame(100))
    frame[42:] = bytes(range(1, 59))
    message = bytes(10) + bytes(frame)
    bounds = [0, *cuts, len(message)]
    for i, (lo, hi) in enumerate(zip(bounds, bounds[1:])):
        last = i == len(bounds) - 2
        tx.desc(i, buffer(raw.sim, message[lo:hi]), hi - lo, 0 if last else DESC_F_NEXT, i + 1)
    addrs = []
    for i, n in enumerate(split):
        addrs.append(buffer(raw.sim, b"\xee" * n))
        last = i == len(split) - 1
        rx.desc(i, addrs[-1], n, DESC_F_WRITE | (0 if last else DESC_F_NEXT), i + 1)
    rx.offer(0)
    tx.offer(0)
    raw.sim.poll()
    assert raw.dev.errors() == []
    assert tx.used_idx() == 1 and rx.used_idx() == 1
    used_len = struct.unpack_from("<I", rx.view, rx.used_offset + 4 + 4)[0]
    assert used_len == len(message)
    written = b"".join(dma_bytes(a, n) for a, n in zip(addrs, split))[:used_len]
    assert written == message                       # zero header, then the frame
