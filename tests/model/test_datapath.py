"""Model DMA engines: tx/rx descriptors, wire modes, filters, drops, stats."""
import ipaddress
import struct
import time

import dpkt
import pytest
from hypothesis import given, settings, strategies as st

from .conftest import (BAM, BCAST, DCMD_EOP, DCMD_IFCS, DCMD_RS, DMATXCTL, ENABLE, FCTRL, GORCH,
                      GORCL, GOTCH, GOTCL, GPRC, GPTC, MAC0, MAC1, MPE, QPRC, QPRDC, RDH, RDT,
                      ROC, RXCTRL, RXDCTL, RXMPC0, TDH, TDT, TXDCTL, UPE, DmaMem, Nic, frame,
                      wait_until)
from ixypy.sim._model import IntelModel


def pair_up(sim, nic0, nic1, **rx_kw):
    sim.function(0).wire_pair(sim.function(1))
    nic0.up(rx=False)
    nic1.up(tx=False, **rx_kw)


def test_pair_tx_delivers_to_peer_rx(sim, nic0, nic1):
    pair_up(sim, nic0, nic1)
    frames = [frame(MAC1, size=s) for s in (60, 100, 1514)]
    nic0.send(frames)
    got = nic1.recv(want=3)
    assert got == frames
    wait_until(nic0.tx_done)
    for i, f in enumerate(frames):          # tx write-back: DD in STA (offset 12)
        assert nic0.mem.u32(nic0.tx_ring + 16 * i + 12) & 1
        # rx write-back: DD|EOP at offset 8, length at offset 12
    assert nic1.rx_next == 3
    ws0, ws1 = sim.function(0).wire_stats(), sim.function(1).wire_stats()
    assert ws0["tx_packets"] == 3 and ws0["tx_bytes"] == sum(map(len, frames))
    assert ws1["rx_packets"] == 3 and ws1["rx_bytes"] == sum(map(len, frames))
    assert sim.function(0).errors() == [] and sim.function(1).errors() == []


def test_rx_write_back_format(sim, nic0, nic1):
    pair_up(sim, nic0, nic1)
    f = frame(MAC1, size=200)
    nic0.send([f])
    wait_until(lambda: nic1.rx_status(0) & 1, what="DD")
    st_, ln = struct.unpack_from("<II", nic1.mem.mm, nic1.mem.off(nic1.rx_ring) + 8)
    assert st_ & 0x3 == 0x3                  # DD | EOP
    assert ln & 0xFFFF == 200
    assert nic1.mem.read(nic1.rx_bufs[0], 200) == f


def test_stats_clear_on_read_bytes_include_crc(sim, nic0, nic1):
    pair_up(sim, nic0, nic1)
    p0, p1 = sim.function(0), sim.function(1)
    for r in (GPTC, GOTCL, GOTCH):
        p0.read32(r)
    frames = [frame(MAC1, size=100)] * 5
    nic0.send(frames)
    nic1.recv(want=5)
    wait_until(nic0.tx_done)
    assert p0.read32(GPTC) == 5
    assert p0.read32(GPTC) == 0
    assert p0.read32(GOTCL) == 5 * 104       # destination address through CRC
    assert p0.read32(GOTCH) == 0
    assert p0.read32(GOTCL) == 0
    assert p1.read32(GPRC) == 5 and p1.read32(GPRC) == 0
    assert p1.read32(GORCL) == 5 * 104 and p1.read32(GORCH) == 0
    assert p1.read32(GORCL) == 0
    assert p1.read32(QPRC(0)) == 5 and p1.read32(QPRC(0)) == 0


def test_tx_holds_until_bus_master(sim, nic0, nic1):
    pair_up(sim, nic0, nic1)
    nic0.bus_master(False)
    nic0.send([frame(MAC1)])
    wait_until(lambda: any("BME is clear" in e for e in sim.function(0).errors()), what="BME error")
    assert sim.function(0).read32(TDH(0)) == 0
    assert sim.function(1).wire_stats()["rx_packets"] == 0
    nic0.bus_master(True)
    assert len(nic1.recv(want=1)) == 1


def test_rx_needs_bus_master(sim, nic0):
    nic0.up(tx=False)
    nic0.bus_master(False)
    assert not sim.function(0).inject(frame(MAC0))
    assert any("BME is clear" in e for e in sim.function(0).errors())
    assert nic0.rx_status(0) == 0
    nic0.bus_master(True)
    assert sim.function(0).inject(frame(MAC0))


def test_tx_buffer_outside_dma_map_stops_queue(sim, nic0, nic1):
    pair_up(sim, nic0, nic1)
    nic0.tx_desc(0, 0x1000, 60)              # unmapped address
    nic0.w(TDT(0), 1)
    wait_until(lambda: any("outside the DMA map" in e for e in sim.function(0).errors()), what="error")
    assert "TXD[0] of queue 0: buffer 0x1000+60 outside the DMA map (queue stopped)" in sim.function(0).errors()
    nic0.tx_tail = 1
    nic0.send([frame(MAC1)])                 # the queue is stopped: nothing more goes out
    time.sleep(0.01)
    assert sim.function(0).read32(TDH(0)) == 0
    assert sim.function(1).wire_stats()["rx_packets"] == 0


def test_rx_buffer_outside_dma_map(sim, nic0):
    nic0.up(tx=False)
    nic0.mem.put("<QQ", nic0.rx_ring, 0x2000, 0)
    assert not sim.function(0).inject(frame(MAC0))
    assert any(e.startswith("RXD[0] of queue 0: buffer 0x2000") for e in sim.function(0).errors())


def test_legacy_tx_descriptor_is_an_error(sim, nic0, nic1):
    pair_up(sim, nic0, nic1)
    nic0.mem.put("<QII", nic0.tx_ring, nic0.tx_bufs[0], 60 | DCMD_EOP | DCMD_RS, 0)
    nic0.w(TDT(0), 1)
    wait_until(lambda: any("legacy descriptor" in e for e in sim.function(0).errors()), what="error")
    assert sim.function(1).wire_stats()["rx_packets"] == 0


def test_paylen_mismatch_is_an_error(sim, nic0, nic1):
    pair_up(sim, nic0, nic1)
    nic0.mem.write(nic0.tx_bufs[0], frame(MAC1))
    nic0.tx_desc(0, nic0.tx_bufs[0], 60, paylen=0)
    nic0.w(TDT(0), 1)
    wait_until(lambda: any("PAYLEN 0 differs" in e for e in sim.function(0).errors()), what="error")
    assert sim.function(1).wire_stats()["rx_packets"] == 0


def test_multi_descriptor_tx_packet(sim, nic0, nic1):
    pair_up(sim, nic0, nic1)
    f = frame(MAC1, size=300)
    parts = [f[:14], f[14:100], f[100:]]
    for i, part in enumerate(parts):
        nic0.mem.write(nic0.tx_bufs[i], part)
        cmd = DCMD_IFCS | (DCMD_EOP | DCMD_RS if i == 2 else 0)
        nic0.tx_desc(i, nic0.tx_bufs[i], len(part), cmd=cmd, paylen=300 if i == 0 else 0)
    nic0.w(TDT(0), 2)                        # EOP not handed over yet: nothing sent
    time.sleep(0.005)
    assert sim.function(0).read32(TDH(0)) == 0
    nic0.w(TDT(0), 3)
    assert nic1.recv(want=1) == [f]
    wait_until(lambda: sim.function(0).read32(TDH(0)) == 3)
    assert nic0.mem.u32(nic0.tx_ring + 16 * 2 + 12) & 1     # DD on the RS descriptor
    assert not nic0.mem.u32(nic0.tx_ring + 12) & 1
    assert sim.function(0).errors() == []


def test_rx_split_across_descriptors(sim, nic0, nic1):
    pair_up(sim, nic0, nic1, bsize_kb=1, jumbo=9018)
    f = frame(MAC1, size=1500)
    nic0.send([f])
    wait_until(lambda: nic1.rx_status(1) & 1, what="second descriptor")
    lens = [nic1.mem.u32(nic1.rx_ring + 16 * i + 12) & 0xFFFF for i in range(2)]
    stats = [nic1.rx_status(i) & 3 for i in range(2)]
    assert nic1.recv() == [f]
    assert lens == [1024, 476] and stats == [1, 3]   # EOP only on the last


def test_jumbo_split_three_descriptors(sim, nic0):
    nic0.up(tx=False, bsize_kb=1, jumbo=9018)
    f = frame(MAC0, size=3000)
    assert sim.function(0).inject(f)
    assert nic0.recv() == [f]
    assert nic0.rx_next == 3


def test_oversize_dropped_and_counted(sim, nic0):
    nic0.up(tx=False)
    p = sim.function(0)
    p.read32(ROC)
    assert p.inject(frame(MAC0, size=1514))           # 1518 with CRC: fits
    assert not p.inject(frame(MAC0, size=1515))
    assert p.read32(ROC) == 1 and p.read32(ROC) == 0
    assert p.read32(GPRC) == 1


def test_rx_drop_no_descriptor_drop_en(sim, nic0):
    nic0.up(tx=False, n=8, drop_en=True)
    p = sim.function(0)
    results = [p.inject(frame(MAC0)) for _ in range(10)]
    assert results == [True] * 7 + [False] * 3        # RDT = n-1: 7 free
    assert p.read32(QPRDC(0)) == 3 and p.read32(QPRDC(0)) == 0
    assert p.read32(RXMPC0) == 0
    assert p.wire_stats()["rx_no_desc_drops"] == 3
    assert p.read32(RDH(0)) == p.read32(RDT(0)) == 7


def test_rx_drop_no_descriptor_without_drop_en(sim, nic0):
    nic0.up(tx=False, n=8, drop_en=False)
    p = sim.function(0)
    results = [p.inject(frame(MAC0)) for _ in range(9)]
    assert results == [True] * 7 + [False] * 2
    assert p.read32(RXMPC0) == 2 and p.read32(RXMPC0) == 0
    assert p.read32(QPRDC(0)) == 0
    assert len(nic0.recv()) == 7
    assert p.inject(frame(MAC0))                      # descriptors handed back


def test_mac_filter(sim, nic0):
    nic0.up(tx=False, fctrl=0)
    p = sim.function(0)
    other = b"\x02\x99\x99\x99\x99\x99"
    mcast = b"\x01\x00\x5e\x00\x00\x01"
    assert p.inject(frame(MAC0))
    assert not p.inject(frame(other))
    assert not p.inject(frame(BCAST))                 # BAM clear
    assert not p.inject(frame(mcast))                 # MPE clear
    assert p.wire_stats()["rx_filtered"] == 3
    p.write32(RXCTRL, 0)
    p.write32(FCTRL, BAM | MPE)
    p.write32(RXCTRL, 1)
    assert p.inject(frame(BCAST)) and p.inject(frame(mcast))
    assert not p.inject(frame(other))
    p.write32(RXCTRL, 0)
    p.write32(FCTRL, UPE)
    p.write32(RXCTRL, 1)
    assert p.inject(frame(other))
    assert p.inject(frame(BCAST))                     # UPE accepts anything
    assert p.errors() == []
    assert "FCTRL.UPE=1" in p.events()
    assert len(nic0.recv()) == 5


def test_rx_queue_disable_quiesces_source(sim, nic0):
    nic0.up(tx=False, n=32)
    p = sim.function(0)
    p.wire_source(frame(MAC0), count=0)
    nic0.recv(want=40)
    p.write32(RXDCTL(0), 0)
    assert not p.read32(RXDCTL(0)) & ENABLE
    rdh = p.read32(RDH(0))
    snapshot = nic0.mem.read(nic0.rx_ring, 16 * 32)
    nic0.recv()                                       # hands descriptors back (RDT moves)
    time.sleep(0.005)
    assert p.read32(RDH(0)) == rdh
    # the engine wrote nothing since the disable returned
    nic0.mem.write(nic0.rx_ring, snapshot)
    assert nic0.mem.read(nic0.rx_ring, 16 * 32) == snapshot


def test_source_with_sequence_numbers(sim, nic0):
    nic0.up(tx=False, n=64)
    p = sim.function(0)
    p.wire_source(frame(MAC0, size=64), count=500, seq_offset=14)
    got = nic0.recv(want=500)
    seqs = [struct.unpack_from("<Q", f, 14)[0] for f in got]
    assert seqs == list(range(500))
    assert all(len(f) == 64 and f[:6] == MAC0 for f in got)
    time.sleep(0.005)
    assert nic0.recv() == []                          # count reached
    assert p.wire_stats()["rx_packets"] == 500
    assert p.errors() == []


def ipv4_frame(dst_mac: bytes, src_ip: str, proto: str) -> bytes:
    """A 60-byte IPv4 UDP or TCP frame with every checksum dpkt computes."""
    l4 = dpkt.udp.UDP(sport=1234, dport=5678, data=b"flows") if proto == "udp" else \
        dpkt.tcp.TCP(sport=1234, dport=80, data=b"flows")
    ip = dpkt.ip.IP(src=ipaddress.IPv4Address(src_ip).packed, dst=bytes([10, 0, 0, 1]),
                    p=dpkt.ip.IP_PROTO_UDP if proto == "udp" else dpkt.ip.IP_PROTO_TCP, data=l4)
    return bytes(dpkt.ethernet.Ethernet(dst=dst_mac, src=b"\x02\xaa\xbb\xcc\xdd\xee", data=ip)).ljust(60, b"\0")


@pytest.mark.parametrize("proto", ["udp", "tcp"])
def test_source_flows_keep_every_checksum(sim, nic0, proto):
    """wire_source(flows=5): copy i is the template from source IP
    10.0.0.2 + i % 5, with the IPv4 header and the UDP (non-zero) or TCP
    checksum as dpkt computes them for that address (the model updates them
    incrementally). A frame that is not IPv4 is sent as one flow, with an
    error. Mutations tried: sim_flows_write never updating the L4 checksum:
    failed; the flows cycling over n + 1 (sim_flows_after): failed."""
    nic0.up(tx=False, n=64)
    p = sim.function(0)
    p.wire_source(ipv4_frame(MAC0, "10.0.0.2", proto), count=20, flows=5)
    got = nic0.recv(want=20)
    assert got == [ipv4_frame(MAC0, str(ipaddress.IPv4Address("10.0.0.2") + i % 5), proto) for i in range(20)]
    assert p.errors() == []
    p.wire_source(frame(MAC0), count=3, flows=5)
    assert nic0.recv(want=3) == [frame(MAC0)] * 3
    assert any("5 flows asked for" in e for e in p.errors())


def test_sink_counts_tx(sim, nic0):
    nic0.up(rx=False)
    nic0.send([frame(BCAST, size=60)] * 10)
    wait_until(nic0.tx_done)
    ws = sim.function(0).wire_stats()
    assert ws["tx_packets"] == 10 and ws["tx_bytes"] == 600
    assert sim.function(0).read32(GPTC) == 10
    assert sim.function(0).read32(GOTCL) == 640


def test_stop_start_and_destroy_while_running(sim, nic0, nic1):
    pair_up(sim, nic0, nic1)
    nic0.send([frame(MAC1)])
    assert len(nic1.recv(want=1)) == 1
    sim.stop()
    nic0.send([frame(MAC1)])
    time.sleep(0.005)
    assert nic1.recv() == []                          # no engine, no DMA
    sim.start()
    assert len(nic1.recv(want=1)) == 1
    sim.function(1).wire_source(frame(MAC1), count=0)     # keep the worker busy
    sim.close()                                       # stops the worker first


def test_reset_while_traffic_quiesces(sim, nic0):
    nic0.up(tx=False, n=32)
    p = sim.function(0)
    p.wire_source(frame(MAC0), count=0)
    nic0.recv(want=10)
    nic0.reset()
    assert not p.read32(RXDCTL(0)) & ENABLE
    assert p.read32(RDH(0)) == 0
    snapshot = nic0.mem.read(nic0.rx_ring, 16 * 32)
    time.sleep(0.005)
    assert nic0.mem.read(nic0.rx_ring, 16 * 32) == snapshot


def test_loopback_and_busy_poll(sim, nic0):
    sim.set_busy_poll(True)
    p = sim.function(0)
    p.wire_pair(p)
    nic0.up()
    frames = [frame(MAC0, size=60 + i) for i in range(40)]
    nic0.send(frames)
    assert nic0.recv(want=40) == frames
    sim.set_busy_poll(False)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=12))
def test_pair_batches_arrive_once_in_order(batches):
    s = IntelModel(2, mac=MAC0)
    try:
        mem = DmaMem(s)
        s.start()
        a, b = Nic(s.function(0), mem), Nic(s.function(1), mem)
        s.function(0).wire_pair(s.function(1))
        a.up(rx=False)
        b.up(tx=False, n=256)
        seq, got = 0, []
        for n in batches:
            # respect the ring: wait for room
            wait_until(lambda: (a.tx_tail - a.r(TDH(0))) % a.tx_n + n < a.tx_n, what="tx room")
            fr = []
            for _ in range(n):
                fr.append(frame(MAC1, size=60 + seq % 64, fill=bytes([seq & 0xFF])) + seq.to_bytes(4, "little"))
                seq += 1
            a.send(fr)
            got += b.recv()
        got += b.recv(want=seq - len(got)) if seq > len(got) else []
        nums = [int.from_bytes(f[-4:], "little") for f in got]
        assert nums == list(range(seq))
        assert s.function(0).errors() == [] and s.function(1).errors() == []
    finally:
        s.close()


def test_unmap_under_enabled_ring_stops_queue(sim, nic0):
    nic0.up(tx=False)
    p = sim.function(0)
    sim.dma_unmap(nic0.mem.base, nic0.mem.size)
    assert not p.read32(RXDCTL(0)) & ENABLE
    assert any("DMA unmap" in e and "RXDCTL[0]" in e for e in p.errors())
    assert not p.inject(frame(MAC0))


def test_head_write_while_enabled_is_an_error(sim, nic0):
    nic0.up()
    p = sim.function(0)
    p.write32(RDH(0), 3)
    p.write32(TDH(0), 3)
    assert p.read32(RDH(0)) == 0 and p.read32(TDH(0)) == 0
    assert "RDH[0] written while the queue is enabled (ignored)" in p.errors()
    assert "TDH[0] written while the queue is enabled (ignored)" in p.errors()
