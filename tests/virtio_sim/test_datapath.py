"""The virtio driver against the legacy virtio-net model: bring-up, tx to a
sink and rx from a source with sequence numbers, index wrap, loopback, the
control queue, and the C-driven benchmark loops."""
import time

import pytest

import ixypy
from ixypy import PacketBatch
from ixypy.fastpath.bench import bench_fwd, bench_rx, bench_tx
from ixypy.drivers.virtio import VirtioDevice
from ixypy.packets import SEQ_OFFSET, udp_frame
from ixypy.sim import close_model
from ixypy.sim.virtio import VirtioSimBus, new_virtio_model

from .conftest import F_ANY_LAYOUT


def send(txq, pool, count, batch_size=32):
    batch, sent, seq = PacketBatch(batch_size), 0, 0
    while sent < count:
        if not len(batch):
            batch.alloc(pool, min(batch_size, count - sent))
            seq = batch.stamp_u64(SEQ_OFFSET, seq)
        sent += txq.tx(batch)
    return sent


def receive(rxq, count, timeout=20.0):
    """Receive count packets, checking their sequence numbers 0, 1, ..."""
    batch, got, expected, bad = PacketBatch(32), 0, 0, 0
    deadline = time.monotonic() + timeout
    while got < count and time.monotonic() < deadline:
        if count - got < 32:
            batch = PacketBatch(count - got)     # never take more than count
        n = rxq.rx(batch)
        if n:
            expected, gaps = batch.check_seq_u64(SEQ_OFFSET, expected)
            bad += gaps
            got += n
            batch.free()
    return got, bad


def test_bring_up_leaves_no_model_errors():
    with ixypy.open("sim:virtio-sink") as dev:
        assert dev.driver_name == "virtio"
        assert dev.mac == "02:a0:c9:00:00:00"
        assert dev.link_up()
        assert dev.promisc is True and dev.bus.function.promisc
        # QEMU-like: ANY_LAYOUT offered and taken, one descriptor per packet
        assert dev.any_layout and dev.host_features & F_ANY_LAYOUT and dev.features & F_ANY_LAYOUT
        assert dev.rx_queue(0).any_layout and dev.tx_queue(0).any_layout
        assert dev.rx_queue(0).chains_posted == dev.rx_queue(0).size
        assert dev.tx_queue(0).capacity == dev.tx_queue(0).size
        assert dev.bus.model_errors() == []
    assert dev.bus.model_errors() == []      # the reset at close is clean too


def test_without_any_layout_offered_two_descriptors_per_packet():
    """A device that does not offer ANY_LAYOUT (VirtualBox's) gets the
    legacy framing: the feature not asked for, half as many packets per queue."""
    sim = new_virtio_model(1)
    try:
        sim.device(0).offer_any_layout(False)
        dev = VirtioDevice(VirtioSimBus("sim:vlegacy", sim, sim.device(0), "sink", owns_sim=False))
        assert not dev.any_layout and not dev.host_features & F_ANY_LAYOUT and not dev.features & F_ANY_LAYOUT
        assert not dev.rx_queue(0).any_layout and not dev.tx_queue(0).any_layout
        assert dev.rx_queue(0).chains_posted == dev.rx_queue(0).size // 2
        assert dev.tx_queue(0).capacity == dev.tx_queue(0).size // 2
        assert dev.bus.model_errors() == []
        dev.close()
    finally:
        close_model(sim)


def distinct_frames(n):
    """n frames of different sizes (60 to 1514 bytes) whose bytes differ
    everywhere past the headers, so a shift by any offset shows."""
    frames = []
    for i in range(n):
        f = bytearray(udp_frame(size=60 + (i * 97) % 1455, sport=i))
        f[42:] = bytes((i + j * 7) & 0xFF for j in range(len(f) - 42))
        frames.append(bytes(f))
    return frames


@pytest.mark.parametrize("layout_a, layout_b", [(True, True), (False, False), (True, False)],
                         ids=["one-desc", "two-desc", "one-to-two-desc"])
def test_frames_cross_and_are_forwarded_back_byte_for_byte(layout_a, layout_b):
    """A sends frames to B over a cable; B forwards what it receives back on
    its own tx (rx buffers sent as they are); A receives them: every frame
    arrives byte for byte, both ways, in both framings and across them.
    Mutations tried: (1) one-descriptor queues without negotiating
    ANY_LAYOUT (F_ANY_LAYOUT dropped from WANTED_FEATURES, queues still
    built with any_layout=True): the model refuses every chain ("header
    descriptor of N bytes without ANY_LAYOUT"), nothing crosses, this test
    and every one-desc test fail; (2) the tx descriptor 8 bytes before the
    data (header overlapping the frame); (3) the rx descriptor at the data
    (header not in the headroom): the frames come back shifted and this
    test fails."""
    sim = new_virtio_model(2, queue_num=64)
    devs = []
    try:
        sim.device(0).wire_pair(sim.device(1))
        for i, layout in enumerate((layout_a, layout_b)):
            sim.device(i).offer_any_layout(layout)
            devs.append(VirtioDevice(VirtioSimBus(f"sim:vx{i}", sim, sim.device(i), "pair", owns_sim=False)))
        a, b = devs
        assert (a.any_layout, b.any_layout) == (layout_a, layout_b)
        frames = distinct_frames(100)       # more than the 64 entries: the rings turn over
        pool = a.mempool(256)
        got_b, got_a = [], []
        deadline = time.monotonic() + 20
        for start in range(0, len(frames), 16):
            # 16 frames at a time: never more in flight than a ring's 32 rx
            # buffers (two-desc on 64 entries), so the model drops none
            chunk = frames[start:start + 16]
            batch, held, back = PacketBatch(16), PacketBatch(16), PacketBatch(16)
            batch.alloc(pool, len(chunk))
            for i, f in enumerate(chunk):
                batch.write(i, f)
            while len(batch) and time.monotonic() < deadline:
                a.tx_batch(0, batch)
            while len(held) < len(chunk) and time.monotonic() < deadline:
                b.rx_batch(0, held)
            got_b += [bytes(held[i]) for i in range(len(held))]
            while len(held) and time.monotonic() < deadline:
                b.tx_batch(0, held)          # forward: B's rx buffers go out on B's tx
            while len(back) < len(chunk) and time.monotonic() < deadline:
                a.rx_batch(0, back)
            got_a += [bytes(back[i]) for i in range(len(back))]
            back.free()
        assert got_b == frames
        assert got_a == frames
        wires = [sim.device(i).wire_stats() for i in range(2)]
        assert [w["rx_no_buffer"] for w in wires] == [0, 0]
        assert a.bus.model_errors() == [] and b.bus.model_errors() == []
    finally:
        for d in devs:
            d.close()
        close_model(sim)


def test_20000_packets_each_way_with_sequence_numbers(pair):
    tx, rx = pair
    pool = tx.mempool(4096)
    pool.fill(udp_frame())
    assert send(tx.tx_queue(0), pool, 20_000) == 20_000
    tx.flush_tx()
    wire = tx.bus.function.wire_stats()
    assert wire["tx_packets"] == 20_000 and wire["tx_bytes"] == 20_000 * 60
    assert wire["tx_seq_errors"] == 0
    assert pool.free_count == 4096
    assert receive(rx.rx_queue(0), 20_000) == (20_000, 0)
    assert rx.stats().rx_packets == 20_000 and rx.stats().rx_errors == 0
    assert tx.bus.model_errors() == [] and rx.bus.model_errors() == []


def test_stats_count_each_frame_with_its_fcs(pair):
    """DeviceStats' bytes include the 4-byte FCS on every driver: the virtio
    driver counts frames the device hands over without one, and adds it."""
    tx, rx = pair
    pool = tx.mempool(1024)
    pool.fill(udp_frame(100))
    assert send(tx.tx_queue(0), pool, 1000) == 1000
    tx.flush_tx()
    assert tx.bus.function.wire_stats()["tx_bytes"] == 1000 * 100             # the wire got the frames, no FCS
    assert (tx.stats().tx_packets, tx.stats().tx_bytes) == (1000, 1000 * (100 + 4))
    assert receive(rx.rx_queue(0), 1000) == (1000, 0)
    assert (rx.stats().rx_packets, rx.stats().rx_bytes) == (1000, 1000 * (60 + 4))   # the source's 60-byte frames


def test_free_running_indices_wrap_past_16_bits(pair):
    tx, rx = pair
    pool = tx.mempool(4096)
    pool.fill(udp_frame())
    assert send(tx.tx_queue(0), pool, 70_000, batch_size=64) == 70_000
    tx.flush_tx()
    assert tx.bus.function.wire_stats()["tx_packets"] == 70_000
    assert tx.bus.function.wire_stats()["tx_seq_errors"] == 0
    assert receive(rx.rx_queue(0), 70_000) == (70_000, 0)
    assert receive(rx.rx_queue(0), 1, timeout=0.2) == (0, 0)     # the source sent 70,000
    assert rx.bus.function.wire_stats()["rx_packets"] == 70_000
    assert tx.bus.model_errors() == [] and rx.bus.model_errors() == []


def test_loopback_returns_the_bytes_sent():
    with ixypy.open("sim:virtio-loop") as dev:
        frames = [udp_frame(size=60 + 100 * i, sport=i) for i in range(8)]
        batch = PacketBatch(8)
        batch.alloc(dev.mempool(64), 8)
        for i, f in enumerate(frames):
            batch.write(i, f)
        assert dev.tx_batch(0, batch) == 8
        got, deadline = PacketBatch(8), time.monotonic() + 5
        while len(got) < 8 and time.monotonic() < deadline:
            dev.rx_batch(0, got)
        assert [bytes(got[i]) for i in range(len(got))] == frames
        got.free()
        assert dev.bus.model_errors() == []


def test_promiscuous_off_filters_other_destinations():
    with ixypy.open("sim:virtio-loop") as dev:
        dev.set_promisc(False)
        assert not dev.bus.function.promisc
        pool = dev.mempool(64)
        batch = PacketBatch(2)
        batch.alloc(pool, 2)
        batch.write(0, udp_frame(dst_mac="02:00:00:00:00:99"))
        batch.write(1, udp_frame(dst_mac=dev.mac))
        dev.tx_batch(0, batch)
        dev.flush_tx()
        got, deadline = PacketBatch(2), time.monotonic() + 5
        while not len(got) and time.monotonic() < deadline:
            dev.rx_batch(0, got)
        assert len(got) == 1 and bytes(got[0])[:6] == bytes.fromhex(dev.mac.replace(":", ""))
        got.free()
        assert dev.bus.function.wire_stats()["rx_filtered"] == 1
        dev.set_promisc(True)
        assert dev.bus.function.promisc
        assert dev.bus.model_errors() == []


def test_used_buffer_notification_only_when_asked(pair):
    """2.7.7: ISR bit 0 is raised only while VRING_AVAIL_F_NO_INTERRUPT is clear."""
    _, rx = pair
    rxq, model_dev = rx.rx_queue(0), rx.bus.function
    receive(rxq, 100)
    rx.transport.port.read8(19)                           # ISR_STATUS: read clears
    assert not model_dev.isr_pending
    rxq.set_interrupt(True)
    receive(rxq, 100)
    assert model_dev.isr_pending
    assert rx.transport.port.read8(19) & 1 and not model_dev.isr_pending
    rxq.set_interrupt(False)


@pytest.mark.parametrize("threaded", [True, False])
def test_bench_loops_move_what_they_report(model, pair, threaded):
    """As the Intel loops: until at least `packets` moved (the last batch
    may overshoot); every packet counted by the driver reached the model."""
    tx, rx = pair
    hook = None
    if not threaded:
        model.stop()
        hook = model.poll_hook()
    pool = tx.mempool(4096)
    pool.fill(udp_frame())
    txq, rxq = tx.tx_queue(0), rx.rx_queue(0)
    sent = bench_tx(txq, pool, 32, 10_000, SEQ_OFFSET, hook)
    assert 10_000 <= sent < 10_000 + 32 and txq.packets == sent
    while txq.in_flight:
        if not threaded:
            model.poll()
        txq.reclaim()
    assert tx.bus.function.wire_stats()["tx_packets"] == sent
    assert tx.bus.function.wire_stats()["tx_seq_errors"] == 0
    received, _ = bench_rx(rxq, PacketBatch(32), 10_000, hook)
    assert received == rxq.packets
    assert 10_000 <= received < 10_000 + 32
    held = PacketBatch(32)
    forwarded, _ = bench_fwd(rxq, txq, held, 10_000, hook)
    assert forwarded == txq.packets - sent
    assert 10_000 <= forwarded < 10_000 + 32
    assert rxq.packets - received == forwarded + len(held)    # the rest waits in the batch
    held.free()
    assert pool.free_count == 4096          # every bench_tx buffer came back
    assert tx.bus.model_errors() == [] and rx.bus.model_errors() == []
