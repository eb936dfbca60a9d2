"""The virtio-net driver through the VirtIO 1.x interface, against QEMU's
virtio-net in the guest.

One guest for the module, NICs 0 and 1 wired together on hub 0:
- NIC 0: QEMU's default ``virtio-net-pci`` (transitional, 1af4:1000): ixypy
  drives its 1.x interface, not the legacy one in BAR0;
- NIC 1: 1.x only (``disable-legacy=on``, 1af4:1041) with
  ``iommu_platform=on``: VIRTIO_F_ACCESS_PLATFORM is offered, so the device's
  DMA goes through the guest's IOMMU and, under VFIO, ixypy's buffers sit at
  IOVAs that are not their physical addresses;
- NIC 2: 1.x only, alone, sending to a loopback UDP socket on the host (the
  sink for the pktgen figures).
Every script hands its NICs back to the kernel at the end.
"""
import json
import socket
import textwrap

import pytest

from ixypy.packets import SEQ_OFFSET

from .guest import Nic, guest_script
from .test_vm_virtio import pktgen_next_to_kernel
# the legacy module's tests that hold as written for any virtio-net, run
# here on the 1.x interface (NIC 0 transitional, NIC 1 1.x-only)
from .test_vm_virtio import test_bad_input  # noqa: F401
# `ixypy pktgen` on NIC 0 (transitional), `ixypy capture` on NIC 1 (1.x-only, IOVAs under VFIO)
from .test_vm_virtio import test_cli_pktgen_and_capture_on_virtio  # noqa: F401
# fwd NIC 1 (IOVAs) -> NIC 2 (physical addresses): the leg copies (apps.forward)
from .test_vm_virtio import test_cli_fwd_devices_bind_unbind_hugepages  # noqa: F401
from .test_vm_virtio import test_killed_sender_stops_dma_uio_guard_and_vfio_reset  # noqa: F401
from .test_vm_virtio import test_ring_wrap_batch_sizes_exhaustion_and_buffers_back  # noqa: F401

pytestmark = pytest.mark.vm

GUEST_NICS = [Nic("virtio-transitional", hub=0), Nic("virtio-modern", hub=0, iommu_platform=True),
              Nic("virtio-modern", udp_sink=True)]

PROLOGUE = """
import json
import threading
import ixypy
from ixypy import PacketBatch
from ixypy.pci import PciDevice
from ixypy.drivers.virtio import F_ACCESS_PLATFORM, F_VERSION_1
from guest_virtio import *

def layout(dev):
    q = dev.tx_queue(0)
    return {"modern": dev.modern, "version_1": bool(dev.features & F_VERSION_1),
            "access_platform": bool(dev.features & F_ACCESS_PLATFORM),
            "offered_access_platform": bool(dev.host_features & F_ACCESS_PLATFORM),
            "hdr_len": [dev.rx_queue(0).hdr_len, q.hdr_len], "one_desc": q.capacity == q.size,
            "iova": type(dev.bus.dma).__name__}
"""


def run(guest, body, timeout=90.0, **constants):
    result = guest.run(guest_script(PROLOGUE + textwrap.dedent(body), **constants), timeout=timeout)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_ixypy_to_ixypy_through_the_1x_interface_uio_and_vfio(guest):
    """Transitional NIC 0 and 1.x-only NIC 1 (ACCESS_PLATFORM) exchange
    sequence-numbered frames both ways, every one in order, over UIO and
    VFIO. On both: the 1.x interface, VERSION_1, the 12-byte header, one
    descriptor per packet; NIC 1 under VFIO maps its DMA at IOVAs
    (VfioAllocator), not at physical addresses.
    Mutations tried: the 10-byte legacy header kept with VERSION_1: the
    header check fails (the sequence numbers still arrive: the device takes
    2 bytes of each frame as header and writes num_buffers over the first
    2 of the received one, which test_linux_and_ixypy_exchange_frames_...
    catches, it failed too); ACCESS_PLATFORM left out of the accepted
    features: QEMU refuses FEATURES_OK and the open fails."""
    a, b = guest.nic(0), guest.nic(1)
    out = run(guest, """
        results = []
        for (src, dst), (m_src, m_dst) in (((A, B), ("uio", "vfio")), ((B, A), ("vfio", "uio")),
                                           ((A, B), ("vfio", "vfio"))):
            tx = ixypy.open(src, method=m_src)
            rx = ixypy.open(dst, method=m_dst)
            pool = tx.mempool(4096)
            res = transfer(tx, rx, COUNT, pool=pool)
            res.update(layout={src: layout(tx), dst: layout(rx)}, macs=[tx.mac, rx.mac],
                       links=[tx.link_speed(), rx.link_speed()], ids=[PciDevice(src).ids, PciDevice(dst).ids],
                       tx_stats=vars(tx.stats()), rx_stats=vars(rx.stats()))
            rx_pool = rx.rx_mempool
            tx.close()
            rx.close()
            res["free"] = [pool.free_count == pool.num_bufs, rx_pool.free_count == rx_pool.num_bufs]
            results.append(res)
        for addr in (A, B):
            PciDevice(addr).release()
        report(results=results)
    """, A=a.address, B=b.address, COUNT=20000, timeout=150)
    print(out)
    for res in out["results"]:
        assert (res["sent"], res["received"], res["bad"], res["next_seq"]) == (20000, 20000, 0, 20000), res
        assert res["tx_stats"]["tx_packets"] == 20000 and res["tx_stats"]["tx_bytes"] == 20000 * (60 + 4)
        assert res["rx_stats"]["rx_packets"] == 20000 and res["rx_stats"]["rx_bytes"] == 20000 * (60 + 4)
        assert res["free"] == [True, True] and res["links"] == [1000, 1000]
        for addr, lay in res["layout"].items():
            assert lay["modern"] and lay["version_1"] and lay["hdr_len"] == [12, 12] and lay["one_desc"], res
            assert lay["offered_access_platform"] == lay["access_platform"] == (addr == b.address), res
    assert out["results"][0]["ids"] == [[0x1AF4, 0x1000], [0x1AF4, 0x1041]]
    assert out["results"][0]["macs"] == [a.mac, b.mac]
    # NIC 1 under VFIO: plain IOVAs; NIC 0 (no ACCESS_PLATFORM) under VFIO: IOVA = physical
    assert out["results"][0]["layout"][b.address]["iova"] == "VfioAllocator"
    assert out["results"][2]["layout"][a.address]["iova"] == "IdentityVfioAllocator"


def test_linux_and_ixypy_exchange_frames_byte_for_byte_both_ways(guest):
    """ixypy on the 1.x-only NIC 1 (VFIO, ACCESS_PLATFORM), Linux's
    virtio_net on NIC 0: 300 frames each way, byte for byte, in order;
    promiscuous mode through the control queue on and off."""
    a, b = guest.nic(0), guest.nic(1)
    out = run(guest, """
        ifname = kernel_iface(A)
        s = raw_socket(ifname)
        dev = ixypy.open(B, method="vfio", promisc=False)
        res = {"layout": layout(dev), "mac": dev.mac, "promisc": dev.promisc}
        # ixypy -> Linux
        frames = test_frames(dev.mac, A_MAC, COUNT)
        got = []
        def receive():
            s.settimeout(5)
            try:
                while len(got) < COUNT:
                    frame = s.recv(4096)
                    if is_test_frame(frame):
                        got.append(frame)
            except TimeoutError:
                pass
        receiver = threading.Thread(target=receive, daemon=True)
        receiver.start()
        res["sent"] = send_frames(dev, frames, delivered=lambda: len(got))
        receiver.join(10)
        res["to_linux"] = [len(got), got == frames]
        # Linux -> ixypy
        frames = test_frames(A_MAC, dev.mac, COUNT, tag=1)
        got = []
        sender = threading.Thread(target=send_paced, args=(s, frames, got), daemon=True)
        sender.start()
        receive_test_frames(dev, COUNT, got=got)
        sender.join(10)
        res["to_ixypy"] = [len(got), got == frames]
        res["promisc_checks"] = promisc_checks(dev, s, A_MAC)
        res["stats"] = vars(dev.stats())
        dev.close()
        PciDevice(B).release()
        report(**res)
    """, A=a.address, A_MAC=a.mac, B=b.address, COUNT=300)
    print(out)
    assert out["layout"]["access_platform"] and out["layout"]["iova"] == "VfioAllocator", out
    assert out["mac"] == guest.nic(1).mac and out["promisc"] is False
    assert out["sent"] == 300 and out["to_linux"] == [300, True], out
    assert out["to_ixypy"] == [300, True], out
    assert out["promisc_checks"] == [[False, True], [True, False, True], [False, True]], out
    assert out["stats"]["rx_errors"] == 0


def test_unprivileged_user_runs_the_1x_nic_through_vfio(guest):
    """With ACCESS_PLATFORM the device's DMA goes through the IOMMU, so an
    unprivileged user with the VFIO group and a hugetlbfs mount can drive
    it: no physical addresses needed. The legacy-bypassing NIC 0 (no
    ACCESS_PLATFORM offered) is still refused with the reason."""
    a, b = guest.nic(0), guest.nic(1)
    out = run(guest, """
        import os
        from ixypy.errors import IxyError

        def as_user(address, uid=1000):
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(r)
                os.setgid(uid)
                os.setuid(uid)
                try:
                    dev = ixypy.open(address, method="vfio")
                    res = ["opened", dev.mac, dev.link_speed()]
                    dev.close()
                except IxyError as e:
                    res = [type(e).__name__, str(e)]
                except BaseException as e:
                    res = ["crash " + type(e).__name__, str(e)]
                os.write(w, json.dumps(res).encode())
                os._exit(0)
            os.close(w)
            data = b""
            while chunk := os.read(r, 65536):
                data += chunk
            os.waitpid(pid, 0)
            return json.loads(data)

        res = {}
        for name, address in (("a", A), ("b", B)):
            pci = PciDevice(address)
            pci.bind_vfio()
            group = f"/dev/vfio/{pci.iommu_group}"
            for path in (group, "/dev/hugepages"):
                os.chown(path, 1000, 1000)
            try:
                res[name] = as_user(address)
            finally:
                for path in (group, "/dev/hugepages"):
                    os.chown(path, 0, 0)
            pci.release()
        report(**res)
    """, A=a.address, B=b.address)
    print(out)
    assert out["b"] == ["opened", guest.nic(1).mac, 1000], out
    assert out["a"][0] == "PermissionDenied" and "physical addresses" in out["a"][1], out


def test_interrupts_on_the_1x_interface(guest):
    """interrupts=True through VFIO on the 1.x-only NIC 1: the rx queue on
    MSI-X vector 0 (queue_msix_vector), config, tx and control on
    NO_VECTOR; an idle receiver sleeps, and wakes for every frame a sender
    in another process sends."""
    a, b = guest.nic(0), guest.nic(1)
    out = run(guest, """
        from ixypy.drivers import virtio_irq
        proc, commands, results, received = start_sender(A, B_MAC)
        assert results.get(timeout=30) == "ready"
        rx = ixypy.open(B, method="vfio", interrupts=True)
        res = {"vectors": virtio_irq.vectors(rx), "msix": msix_enabled_sysfs(B)}
        res["idle"] = idle_cpu(rx, 1.0)
        commands.put(("bursts", [(300, 0.15), (1, 0.3), (500, 0.2), (7, 0.1)]))
        got, bad, expected, _ = receive_seq(rx, 808, 0, received, timeout=120, wait=0.05)
        res["bursts"] = {"got": got, "bad": bad, "sender_seq": results.get(timeout=30)}
        res["stats"] = rx.interrupts.stats(0)
        commands.put(None)
        res["sender"] = results.get(timeout=30)
        proc.join(30)
        rx.close()
        res["msix_after_close"] = msix_enabled_sysfs(B)
        for addr in (A, B):
            PciDevice(addr).release()
        report(**res)
    """, A=a.address, B=b.address, B_MAC=b.mac, timeout=150)
    print(out)
    assert out["vectors"] == {"config": 0xFFFF, "rx": 0, "tx": 0xFFFF, "ctrl": 0xFFFF}, out
    assert out["msix"] is True and out["msix_after_close"] is False
    assert out["bursts"]["got"] == 808 and out["bursts"]["bad"] == 0, out
    assert out["bursts"]["sender_seq"] == 808 and out["sender"] == "closed"
    idle = out["idle"]
    assert idle["got"] == 0 and idle["cpu"] < 0.25 * idle["wall"], idle     # it slept
    assert out["stats"]["wakeups"] >= 3, out["stats"]


def test_pktgen_next_to_kernel_pktgen_on_the_1x_nic(guest):
    """Same 1.x-only NIC (a sink), same guest: ixypy's pktgen, then the
    kernel's pktgen module on virtio_net (figures printed with -s)."""
    out = pktgen_next_to_kernel(guest, 2)
    print("\nvirtio 1.x pktgen (60-byte frames, batch 32, TCG guest):", out)
    assert out["ixy_pps"] > 1000 and out["kernel_pps_stat"] > 1000, out
    assert out["host_received"] >= out["ixy_sent"] - 256


def test_buffers_at_iovas_are_refused_by_a_nic_using_physical_addresses_and_copied(guest):
    """NIC 1 under VFIO (ACCESS_PLATFORM) has its buffers at IOVAs; NIC 2,
    without ACCESS_PLATFORM, reads physical addresses. NIC 1's buffers
    handed to NIC 2's tx queue are refused before NIC 2 sees one: without
    the check NIC 2 sent the right lengths of whatever lay at those physical
    addresses (the host saw sequence number 0 in every frame). Copied into
    a pool of NIC 2's (ops.copy) they reach the host intact. NIC 2's own
    buffers (IOVA = physical) are valid for NIC 1 too."""
    b, c = guest.nic(1), guest.nic(2)
    sink = guest.sink(2)
    sink.settimeout(0)
    while True:                                   # what earlier tests left in the socket
        try:
            sink.recv(2048)
        except BlockingIOError:
            break
    out = run(guest, """
        from ixypy.errors import DmaSpaceMismatch
        from ixypy.fastpath.ops import copy
        from ixypy.packets import SEQ_OFFSET
        nic1, nic2 = ixypy.open(B, method="vfio"), ixypy.open(C, method="vfio")
        batch, res = PacketBatch(COUNT), {}
        batch.alloc(nic1.mempool(1024), COUNT)
        for i in range(COUNT):
            batch.write(i, bytes([0xAB]) * FRAME)
        batch.stamp_u64(SEQ_OFFSET, 0)
        res["reaches"] = [nic2.reaches(nic1.rx_mempool), nic1.reaches(nic2.rx_mempool)]
        try:
            res["sent_uncopied"] = nic2.tx_batch(0, batch)
        except DmaSpaceMismatch as err:
            res["refused"] = str(err)
        res["held"] = len(batch)
        copies = PacketBatch(COUNT)
        res["copied"] = copy(batch, nic2.mempool(1024), copies)
        res["sent"] = 0
        while len(copies):
            res["sent"] += nic2.tx_batch(0, copies)
        nic2.flush_tx()
        nic1.close()
        nic2.close()
        for addr in (B, C):
            PciDevice(addr).release()
        report(**res)
    """, B=b.address, C=c.address, COUNT=64, FRAME=111)
    sink.settimeout(2)
    frames = []
    try:
        while True:
            frames.append(sink.recv(2048))
    except socket.timeout:
        pass
    assert out["reaches"] == [False, True], out
    assert "sent_uncopied" not in out and out["held"] == 64, out
    assert "cannot send buffers of a pool" in out["refused"] and "IOVAs of this process's VFIO container" in out["refused"]
    assert out["copied"] == out["sent"] == 64, out
    ours = [f for f in frames if len(f) == 111]
    seqs = [int.from_bytes(f[SEQ_OFFSET:SEQ_OFFSET + 8], "little") for f in ours]
    assert seqs == list(range(64)), seqs
    assert all(f[:SEQ_OFFSET] == bytes([0xAB]) * SEQ_OFFSET and f[SEQ_OFFSET + 8:] == bytes([0xAB]) * (111 - SEQ_OFFSET - 8)
               for f in ours)
