"""The legacy virtio-net driver against QEMU's virtio-net in the guest.

One guest for the module: NICs 0 and 1 wired together on hub 0, NIC 2 alone
sending to a loopback UDP socket on the host (drained while it sends: QEMU
holds a sender back when its peer cannot take more, even a hub without peers).
Every script hands its NICs back to the kernel at the end (ixypy binds them
again as each test asks), so the tests do not depend on each other's order.
"""
import json
import textwrap
import time

import pytest

from ixypy.packets import SEQ_OFFSET

from .guest import Nic, guest_script
from .guest_pktgen import GUEST_GBPS, check_reports_gbps

pytestmark = pytest.mark.vm

GUEST_NICS = [Nic("virtio", hub=0), Nic("virtio", hub=0), Nic("virtio", udp_sink=True)]

PROLOGUE = """
import json
import threading
import ixypy
from ixypy import PacketBatch
from ixypy.pci import PciDevice
from guest_virtio import *
"""


def run(guest, body, timeout=90.0, **constants):
    result = guest.run(guest_script(PROLOGUE + textwrap.dedent(body), **constants), timeout=timeout)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_ixypy_to_ixypy_uio_to_vfio_and_back(guest):
    a, b = guest.nic(0), guest.nic(1)
    out = run(guest, """
        results = []
        for tx_method, rx_method in (("uio", "vfio"), ("vfio", "uio")):
            tx = ixypy.open(A, method=tx_method)
            rx = ixypy.open(B, method=rx_method)
            pool = tx.mempool(4096)
            res = transfer(tx, rx, COUNT, pool=pool)
            res.update(macs=[tx.mac, rx.mac], links=[tx.link_speed(), rx.link_speed()],
                       drivers=[PciDevice(A).driver, PciDevice(B).driver],
                       tx_stats=vars(tx.stats()), rx_stats=vars(rx.stats()),
                       notifies=[tx.tx_queue(0).notifies, rx.rx_queue(0).notifies])
            rx_pool = rx.rx_mempool
            tx.close()
            rx.close()
            res["free"] = [pool.free_count == pool.num_bufs, rx_pool.free_count == rx_pool.num_bufs]
            results.append(res)
        for addr in (A, B):
            PciDevice(addr).release()
        report(results=results)
    """, A=a.address, B=b.address, COUNT=20000)
    for res, drivers in zip(out["results"], (["uio_pci_generic", "vfio-pci"], ["vfio-pci", "uio_pci_generic"])):
        assert res["drivers"] == drivers
        assert res["macs"] == [a.mac, b.mac]
        assert res["links"] == [1000, 1000]
        assert (res["sent"], res["received"], res["bad"], res["next_seq"]) == (20000, 20000, 0, 20000), res
        # DeviceStats' bytes include each frame's 4-byte FCS, on virtio too
        assert res["tx_stats"]["tx_packets"] == 20000 and res["tx_stats"]["tx_bytes"] == 20000 * (60 + 4)
        assert res["rx_stats"]["rx_packets"] == 20000 and res["rx_stats"]["rx_bytes"] == 20000 * (60 + 4)
        assert res["free"] == [True, True]
    print(out)


def test_ixypy_to_linux_byte_for_byte(guest):
    """QEMU offers VIRTIO_F_ANY_LAYOUT on every backend: ixypy negotiates it
    and sends each frame as one descriptor (the header in the headroom right
    before it); the Linux driver on the other NIC gets every byte."""
    a, b = guest.nic(0), guest.nic(1)
    out = run(guest, """
        ifname = kernel_iface(B)
        s = raw_socket(ifname)
        dev = ixypy.open(A)
        layout = [dev.any_layout, dev.host_features >> 27 & 1, dev.features >> 27 & 1,
                  dev.tx_queue(0).capacity == dev.tx_queue(0).size]
        before = iface_stat(ifname, "rx_packets")
        frames = test_frames(dev.mac, B_MAC, COUNT)
        got = []
        def receive():
            s.settimeout(5)
            try:
                while len(got) < COUNT:
                    got.append(s.recv(4096))
            except TimeoutError:
                pass
        receiver = threading.Thread(target=receive, daemon=True)
        receiver.start()
        sent = send_frames(dev, frames, delivered=lambda: len(got))
        receiver.join(10)
        time.sleep(0.2)
        delta = iface_stat(ifname, "rx_packets") - before
        stats = vars(dev.stats())
        dev.close()
        PciDevice(A).release()
        diff = next((i for i, (x, y) in enumerate(zip(got, frames)) if x != y), None)
        detail = None if diff is None else [len(got[diff]), len(frames[diff]), got[diff][:20].hex(), frames[diff][:20].hex(),
                                            [f[14:19].hex() for f in got[diff - 2:diff + 3]]]
        report(sent=sent, received=len(got), same=got == frames, same_set=sorted(got) == sorted(frames), rx_packets=delta, stats=stats, first_diff=diff, detail=detail, layout=layout)
    """, A=a.address, B=b.address, B_MAC=b.mac, COUNT=300)
    assert out["layout"] == [True, 1, 1, True], out     # one descriptor per packet
    assert out["sent"] == 300
    assert out["received"] == 300 and out["same"], out
    assert out["rx_packets"] == 300
    assert out["stats"]["tx_packets"] == 300


def test_linux_to_ixypy_byte_for_byte_and_promisc(guest):
    """With ANY_LAYOUT negotiated QEMU writes header and frame into one rx
    buffer per packet; ixypy's packet starts after the header, byte for byte."""
    a, b = guest.nic(0), guest.nic(1)
    out = run(guest, """
        ifname = kernel_iface(B)
        s = raw_socket(ifname)
        dev = ixypy.open(A, promisc=False)
        res = {"mac": dev.mac, "link": dev.link_speed(), "promisc": dev.promisc,
               "layout": [dev.any_layout, dev.rx_queue(0).any_layout,
                          dev.rx_queue(0).chains_posted == dev.rx_queue(0).size]}
        frames = test_frames(B_MAC, dev.mac, COUNT, tag=1)
        # send from a thread: the socket blocks once QEMU holds the kernel's
        # tx back (ixypy's rx ring full), until we receive
        got = []
        sender = threading.Thread(target=send_paced, args=(s, frames, got), daemon=True)
        sender.start()
        receive_test_frames(dev, COUNT, got=got)
        sender.join(10)
        diff = next((i for i, (x, y) in enumerate(zip(got, frames)) if x != y), None)
        res.update(received=len(got), same=got == frames, same_set=sorted(got) == sorted(frames), first_diff=diff,
                   detail=None if diff is None else [f[14:19].hex() for f in got[diff - 2:diff + 3]])
        # promiscuous mode: a frame to a foreign MAC, then a marker to ours
        res["promisc_checks"] = promisc_checks(dev, s, B_MAC)
        res["stats"] = vars(dev.stats())
        dev.close()
        PciDevice(A).release()
        report(**res)
    """, A=a.address, B=b.address, B_MAC=b.mac, COUNT=300)
    assert out["mac"] == a.mac and out["link"] == 1000 and out["promisc"] is False
    assert out["layout"] == [True, True, True], out      # one descriptor per rx buffer
    assert out["received"] == 300 and out["same"], out
    assert out["promisc_checks"] == [[False, True], [True, False, True], [False, True]], out
    assert out["stats"]["rx_packets"] >= 303 and out["stats"]["rx_errors"] == 0


def test_ring_wrap_batch_sizes_exhaustion_and_buffers_back(guest):
    a, b = guest.nic(0), guest.nic(1)
    out = run(guest, """
        tx, rx = ixypy.open(A), ixypy.open(B)
        pool = tx.mempool(4096)
        res = {"rx_chains": rx.rx_queue(0).chains_posted, "tx_capacity": tx.tx_queue(0).capacity}
        # the 16-bit ring indices wrap at 65536: go past it
        t0 = time.monotonic()
        res["wrap"] = transfer(tx, rx, WRAP, pool=pool)
        res["wrap_seconds"] = time.monotonic() - t0
        res["batch1"] = transfer(tx, rx, 300, batch_size=1, rx_batch_size=1, window=8, pool=pool)
        # a batch larger than the ring: tx takes what fits, rx gives what is there
        big, rxb, takes = PacketBatch(600), PacketBatch(600), []
        big.alloc(pool)
        big.stamp_u64(42, 0)
        received, expected, bad = 0, 0, 0
        deadline = time.monotonic() + 20
        while received < 600 and time.monotonic() < deadline:
            if len(big) and received == 600 - len(big):   # lockstep: never overrun the peer
                takes.append(tx.tx_queue(0).tx(big))
            if rx.rx_queue(0).rx(rxb):
                received += len(rxb)
                expected, b = rxb.check_seq_u64(42, expected)
                bad += b
                rxb.free()
        res["batch_big"] = {"sent": 600 - len(big), "received": received, "bad": bad, "takes": takes}
        # mempool exhaustion: the app holds every free rx buffer
        held = PacketBatch(4096)
        held.alloc(rx.rx_mempool)
        txb, rxb = PacketBatch(32), PacketBatch(512)
        pool.fill(b"\\xff" * 60)
        seq = 0
        sent = 0
        while sent < 400:     # 256 fill the receiver, the rest wait in QEMU and our tx ring
            if not len(txb):
                txb.alloc(pool, min(32, 400 - sent))
                seq = txb.stamp_u64(42, seq)
            sent += tx.tx_queue(0).tx(txb)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            rx.rx_queue(0).rx(rxb)
        res["while_exhausted"] = [len(rxb), rx.rx_queue(0).chains_posted]
        held.free()
        rxb.free()
        got, expected, bad = 0, 0, 0
        deadline = time.monotonic() + 10
        while got < 400 - res["while_exhausted"][0] and time.monotonic() < deadline:
            if rx.rx_queue(0).rx(rxb):
                got += len(rxb)
                rxb.free()
        res["after_free"] = got
        res["notify_errors"] = [tx.tx_queue(0).notify_errors, rx.rx_queue(0).notify_errors]
        rx_pool = rx.rx_mempool
        tx.close()
        rx.close()
        res["free"] = [pool.free_count, pool.num_bufs, rx_pool.free_count, rx_pool.num_bufs]
        for addr in (A, B):
            PciDevice(addr).release()
        report(**res)
    """, A=a.address, B=b.address, WRAP=70000, timeout=150)
    print({k: v for k, v in out.items()})
    # QEMU's 256-entry queues, one descriptor per packet (ANY_LAYOUT negotiated)
    assert out["rx_chains"] == 256 and out["tx_capacity"] == 256
    takes = out["batch_big"]["takes"]
    assert takes[0] == 256 and max(takes) == 256 and sum(takes) == 600 and len(takes) >= 3, takes
    for key, count in (("wrap", 70000), ("batch1", 300), ("batch_big", 600)):
        res = out[key]
        assert (res["sent"], res["received"], res["bad"]) == (count, count, 0), (key, res)
    assert out["while_exhausted"] == [256, 0]
    assert out["after_free"] == 400 - 256
    assert out["notify_errors"] == [0, 0]
    assert out["free"][0] == out["free"][1] and out["free"][2] == out["free"][3]


def test_bad_input(guest):
    a = guest.nic(0)
    out = run(guest, """
        from ixypy.errors import PacketTooLarge, QueueError, UnsupportedDevice
        res = {}
        def error_of(fn):
            try:
                fn()
            except Exception as e:
                return [type(e).__name__, str(e)]
            return None
        res["ninep"] = error_of(lambda: ixypy.open("0000:00:08.0"))       # virtio-9p: not a NIC
        res["two_queues"] = error_of(lambda: ixypy.open(A, rx_queues=2))
        res["driver_after_refusal"] = PciDevice(A).driver
        dev = ixypy.open(A)
        res["rx_queue_1"] = error_of(lambda: dev.rx_queue(1))
        res["tx_batch_1"] = error_of(lambda: dev.tx_batch(1, PacketBatch(1)))
        big = dev.mempool(16, entry_size=4096)
        batch = PacketBatch(4)
        batch.alloc(big, 2, length=60)
        batch.set_length(1, 3000)
        res["oversize"] = error_of(lambda: dev.tx_queue(0).tx(batch))
        res["after_oversize"] = [len(batch), dev.tx_queue(0).in_flight, dev.stats().tx_packets]
        batch.free()
        dev.close()
        res["big_free"] = big.free_count
        PciDevice(A).release()
        report(**res)
    """, A=a.address)
    assert out["ninep"][0] == "UnsupportedDevice"
    assert out["two_queues"][0] == "QueueError"
    assert out["rx_queue_1"][0] == "QueueError" and out["tx_batch_1"][0] == "QueueError"
    assert out["oversize"][0] == "PacketTooLarge"
    assert out["after_oversize"] == [2, 0, 0]
    assert out["big_free"] == 16


def test_pktgen_rate_next_to_kernel_pktgen(guest):
    """Same NIC (alone on its hub: a sink), same guest: ixypy's pktgen, then
    the kernel's pktgen module on virtio_net. Both are slow under TCG; the
    figures are printed (run with -s) and only sanity-checked."""
    out = pktgen_next_to_kernel(guest, 2)
    print("\nvirtio pktgen (60-byte frames, batch 32, TCG guest):", out)
    assert out["ixy_pps"] > 1000 and out["kernel_pps_stat"] > 1000, out
    assert out["host_received"] >= out["ixy_sent"] - 256


def pktgen_next_to_kernel(guest, index):
    """run_pktgen on NIC index while the host drains its UDP sink; the
    figures and how many frames the host received."""
    with guest.drained_sink(index) as drained:
        out = run_pktgen(guest, guest.nic(index))
    out["host_received"] = drained.count
    return out


def run_pktgen(guest, c):
    return run(guest, """
        import re
        from ixypy.apps import Limits, pktgen
        from ixypy.packets import udp_frame
        dev = ixypy.open(C)
        t0 = time.perf_counter()
        sent = pktgen(dev, [udp_frame(60)], Limits(duration=SECONDS), batch_size=32)
        ixy_pps = sent / (time.perf_counter() - t0)
        notifies = dev.tx_queue(0).notifies
        dev.close()
        ifname = kernel_iface(C)
        def pg(path, cmd):
            with open(path, "w") as f:
                f.write(cmd + "\\n")
        pg("/proc/net/pktgen/kpktgend_0", "rem_device_all")
        pg("/proc/net/pktgen/kpktgend_0", f"add_device {ifname}")
        path = f"/proc/net/pktgen/{ifname}"
        for cmd in ("count 0", "pkt_size 60", "delay 0", "dst_mac 02:a0:c9:00:00:00", "dst 10.0.0.1"):
            pg(path, cmd)
        before = iface_stat(ifname, "tx_packets")
        runner = threading.Thread(target=pg, args=("/proc/net/pktgen/pgctrl", "start"), daemon=True)
        t0 = time.perf_counter()
        runner.start()
        time.sleep(SECONDS)
        pg("/proc/net/pktgen/pgctrl", "stop")
        runner.join(10)
        kernel_seconds = time.perf_counter() - t0
        kernel_sent = iface_stat(ifname, "tx_packets") - before
        with open(path) as f:
            result = f.read()
        m = re.search(r"(\\d+)pps", result)
        pg("/proc/net/pktgen/kpktgend_0", "rem_device_all")
        report(ixy_pps=ixy_pps, ixy_sent=sent, ixy_notifies=notifies, kernel_pps_stat=kernel_sent / kernel_seconds,
               kernel_pps_pktgen=int(m.group(1)) if m else None, kernel_result=result.strip().splitlines()[-2:])
    """, C=c.address, SECONDS=3.0)


def test_pktgen_gbps_is_the_reported_l1_rate_on_virtio(guest):
    """--gbps X on NIC 2 (its frames drained by a host socket): the summary
    reports X Gbit/s on the wire (L1) within 1 %, at 60 and 1514 bytes; the
    bytes count each frame with its FCS, as DeviceStats says, and L2 is the
    frames' share of L1."""
    c = guest.nic(2)
    with guest.drained_sink(2):
        out = run(guest, """
            from guest_pktgen import GUEST_GBPS, run_at_gbps
            PciDevice(C).bind_uio()
            try:
                runs = [run_at_gbps(C, size, gbps) for size, gbps in GUEST_GBPS]
            finally:
                PciDevice(C).release()
            report(runs=runs)
        """, C=c.address, timeout=300)
    print(f"\nvirtio pktgen --gbps in the TCG guest: {[[r['summary'] for r in rs] for rs in out['runs']]}")
    for (size, gbps), size_runs in zip(GUEST_GBPS, out["runs"], strict=True):
        check_reports_gbps(size_runs, size, gbps)


def test_least_privilege_is_refused_with_a_reason(guest):
    """An unprivileged user with the VFIO group and a hugetlbfs mount can run
    VFIO drivers, but not legacy virtio: such a device bypasses the IOMMU
    (it cannot negotiate VIRTIO_F_ACCESS_PLATFORM), so ixypy needs physical
    addresses, which /proc/self/pagemap gives only to root. Both without and
    with the rights the user gets PermissionDenied with a hint, not a crash."""
    a = guest.nic(0)
    out = run(guest, """
        import os
        from ixypy.errors import IxyError
        pci = PciDevice(A)
        pci.bind_vfio()
        group = f"/dev/vfio/{pci.iommu_group}"

        def as_user(uid=1000):
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:     # the child: imports done, drop root, try
                os.close(r)
                os.setgid(uid)
                os.setuid(uid)
                try:
                    ixypy.open(A, method="vfio").close()
                    res = ["opened", ""]
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

        res = {"without": as_user()}
        for path in (group, "/dev/hugepages"):
            os.chown(path, 1000, 1000)
        try:
            res["with"] = as_user()
        finally:
            for path in (group, "/dev/hugepages"):
                os.chown(path, 0, 0)
        res["driver"] = pci.driver
        pci.release()
        report(**res)
    """, A=a.address)
    print(out)
    assert out["driver"] == "vfio-pci"
    assert out["without"][0] == "PermissionDenied" and "hint:" in out["without"][1], out
    assert out["with"][0] == "PermissionDenied" and "physical addresses" in out["with"][1], out


def test_cli_pktgen_and_capture_on_virtio(guest):
    """The `ixypy` command on real (emulated) NICs: pktgen on NIC 0, capture on
    NIC 1 in another process, the pcap compared frame by frame."""
    a, b = guest.nic(0), guest.nic(1)
    out = run(guest, """
        import subprocess, sys
        import dpkt
        from ixypy.packets import SEQ_OFFSET, udp_frame
        cli = [sys.executable, "-m", "ixypy.cli"]
        cap = subprocess.Popen(cli + ["capture", B, "/tmp/out.pcap", "--count", str(COUNT), "--json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = cap.stdout.readline()              # a per-second line: capture is up
        gen = subprocess.run(cli + ["pktgen", A, "--count", str(COUNT), "--rate", "0.002", "--size", "100", "--json"],
                             capture_output=True, text=True, timeout=120)
        cap_out, cap_err = cap.communicate(timeout=120)
        with open("/tmp/out.pcap", "rb") as f:
            frames = [bytes(buf) for _, buf in dpkt.pcap.Reader(f)]
        template = udp_frame(100)
        expected = [template[:SEQ_OFFSET] + i.to_bytes(8, "little") + template[SEQ_OFFSET + 8:] for i in range(COUNT)]
        # QEMU may reorder frames for a receiver it overruns (a loaded host): compare by sequence number
        frames.sort(key=lambda f: int.from_bytes(f[SEQ_OFFSET:SEQ_OFFSET + 8], "little"))
        for addr in (A, B):
            PciDevice(addr).release()
        report(first=first, gen_rc=gen.returncode, gen_err=gen.stderr, gen=gen.stdout.splitlines()[-1],
               cap_rc=cap.returncode, cap_err=cap_err, cap=(cap_out.splitlines() or [""])[-1],
               same=frames == expected, n=len(frames))
    """, A=a.address, B=b.address, COUNT=300, timeout=240)
    assert out["gen_rc"] == 0, out["gen_err"]
    assert out["cap_rc"] == 0, out["cap_err"]
    assert json.loads(out["gen"])["sent"] == 300
    assert json.loads(out["cap"])["written"] == 300
    assert out["n"] == 300 and out["same"]


def test_cli_fwd_devices_bind_unbind_hugepages(guest):
    """`ixypy fwd` between two virtio NICs (pktgen on NIC 0 -> NIC 1 -fwd-> NIC 2
    -> a UDP socket on the host, where every frame is checked), and the
    device-management commands on real (emulated) NICs."""
    a, b, c = guest.nic(0), guest.nic(1), guest.nic(2)
    FRAME = 123                                   # only this test's frames have this size
    with guest.drained_sink(2, keep=True) as drained:
        out = run(guest, """
            import subprocess, sys, time
            cli = [sys.executable, "-m", "ixypy.cli"]
            def ixy(*args, timeout=120):
                r = subprocess.run(cli + list(args), capture_output=True, text=True, timeout=timeout)
                return {"rc": r.returncode, "out": r.stdout, "err": r.stderr}
            res = {"devices": ixy("devices", "--json"), "hugepages": ixy("hugepages", "80"),
                   "bind": ixy("bind", B, "--vfio")}
            fwd = subprocess.Popen(cli + ["fwd", B, C, "--count", str(COUNT), "--json"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            fwd.stdout.readline()                  # a per-second line: forwarding runs
            res["pktgen"] = ixy("pktgen", A, "--count", str(COUNT), "--rate", "0.002", "--size", str(FRAME), "--json")
            fwd_out, fwd_err = fwd.communicate(timeout=120)
            res["fwd"] = {"rc": fwd.returncode, "out": fwd_out, "err": fwd_err}
            res["unbind"] = [ixy("unbind", addr) for addr in (A, B, C)]
            res["drivers"] = [PciDevice(addr).driver for addr in (A, B, C)]
            report(**res)
        """, A=a.address, B=b.address, C=c.address, COUNT=200, FRAME=FRAME, timeout=300)
        time.sleep(0.5)
    devices = {d["address"]: d for d in json.loads(out["devices"]["out"])}
    assert {devices[n.address]["ixypy"] for n in (a, b, c)} == {"virtio"}
    assert out["hugepages"]["rc"] == 0 and "80 hugepages" in out["hugepages"]["out"]
    assert out["bind"]["rc"] == 0 and "vfio-pci" in out["bind"]["out"]
    assert out["pktgen"]["rc"] == 0, out["pktgen"]["err"]
    assert out["fwd"]["rc"] == 0, out["fwd"]["err"]
    fwd_rows = [json.loads(line) for line in out["fwd"]["out"].splitlines() if '"summary"' in line]
    assert fwd_rows[0]["forwarded"] == 200
    seqs = sorted(int.from_bytes(f[SEQ_OFFSET:SEQ_OFFSET + 8], "little") for f in drained.frames if len(f) == FRAME)
    assert seqs == list(range(200))               # every frame crossed both NICs, once
    assert [r["rc"] for r in out["unbind"]] == [0, 0, 0] and out["drivers"] == ["virtio-pci"] * 3


def test_interrupts_vfio_sleep_wake_no_loss_and_uio_refused(guest):
    """interrupts=True through VFIO: MSI-X vector 0 for the rx queue (config,
    tx and control on NO_VECTOR), the config at 24 while MSI-X is on. An idle
    receiver sleeps (little CPU), wakes when a frame comes from a sender in
    another process, loses nothing across idle/busy switches; closing
    disables MSI-X and closes the eventfd; reopening works. Figures (idle
    CPU, wake-up latency, throughput adaptive vs polling) printed with -s."""
    a, b = guest.nic(0), guest.nic(1)
    out = run(guest, """
        import os, statistics
        from ixypy.drivers import virtio_irq
        from ixypy.errors import InterruptsUnavailable
        proc, commands, results, received = start_sender(A, B_MAC)
        assert results.get(timeout=30) == "ready"
        expected, res = 0, {}

        def latency_trials(dev, n, delay=0.3):
            global expected
            lat = []
            for _ in range(n):
                commands.put(("one", delay))
                got, bad, expected, t = receive_seq(dev, 1, expected, received, timeout=10, wait=10)
                lat.append(t - results.get(timeout=10) if got == 1 and not bad else None)
            return lat

        def stream(dev, count):
            global expected
            commands.put(("stream", count))
            got, bad, expected, t = receive_seq(dev, count, expected, received, timeout=120)
            t0 = results.get(timeout=10)
            return {"got": got, "bad": bad, "pps": got / (t - t0) if t else 0}

        rx = ixypy.open(B, method="vfio", interrupts=True)
        fds = [q.fd for q in rx.interrupts.queues]
        res["open"] = {"config": rx.transport.config, "mac": rx.mac, "vectors": virtio_irq.vectors(rx),
                       "msix": msix_enabled_sysfs(B), "flag": rx.rx_queue(0).interrupt_enabled}
        res["idle_irq"] = idle_cpu(rx, 1.0)
        res["idle_irq_stats"] = rx.interrupts.stats(0)
        res["latency"] = latency_trials(rx, 5)
        res["latency_stats"] = rx.interrupts.stats(0)
        bursts = [(300, 0.15), (1, 0.3), (500, 0.2), (64, 0.3), (7, 0.1), (200, 0)]
        commands.put(("bursts", bursts))
        got, bad, expected, _ = receive_seq(rx, sum(c for c, _ in bursts), expected, received, timeout=120, wait=0.05)
        res["bursts"] = {"got": got, "bad": bad, "sender_seq": results.get(timeout=30), "expected": expected}
        res["burst_stats"] = rx.interrupts.stats(0)
        res["stream_irq"] = stream(rx, COUNT)
        res["stream_irq_stats"] = rx.interrupts.stats(0)
        res["flag_after"] = rx.rx_queue(0).interrupt_enabled
        rx.close()
        def closed(fd):
            try:
                os.fstat(fd)
                return False
            except OSError:
                return True
        res["after_close"] = {"fds_closed": [closed(fd) for fd in fds], "msix": msix_enabled_sysfs(B)}
        rx = ixypy.open(B, method="vfio", interrupts=True)
        res["reopen"] = {"config": rx.transport.config, "mac": rx.mac, "vectors": virtio_irq.vectors(rx),
                         "latency": latency_trials(rx, 3), "stats": rx.interrupts.stats(0)}
        rx.close()
        rx = ixypy.open(B, method="vfio")
        res["polling"] = {"config": rx.transport.config, "mac": rx.mac, "msix": msix_enabled_sysfs(B),
                          "interrupts": rx.interrupts}
        res["idle_poll"] = idle_cpu(rx, 1.0)
        res["latency_poll"] = latency_trials(rx, 3)
        res["stream_poll"] = stream(rx, COUNT)
        rx.close()
        commands.put(None)
        res["sender"] = results.get(timeout=30)
        proc.join(30)
        try:
            ixypy.open(B, method="uio", interrupts=True).close()
            res["uio"] = None
        except InterruptsUnavailable as e:
            res["uio"] = str(e)
        res["driver_after_uio"] = PciDevice(B).driver
        for addr in (A, B):
            PciDevice(addr).release()
        report(**res)
    """, A=a.address, B=b.address, B_MAC=b.mac, COUNT=5000, timeout=300)
    print("\nvirtio interrupts (TCG guest):", json.dumps(out, indent=1))
    assert out["open"] == {"config": 24, "mac": b.mac, "vectors": {"config": 0xFFFF, "rx": 0, "tx": 0xFFFF, "ctrl": 0xFFFF},
                           "msix": True, "flag": False}
    idle = out["idle_irq"]
    assert idle["got"] == 0 and idle["wall"] >= 1.0 and idle["cpu"] < 0.25 * idle["wall"], idle
    assert out["idle_irq_stats"]["sleeps"] >= 5 and out["idle_irq_stats"]["timeouts"] >= 5
    lat = out["latency"]
    assert None not in lat and max(lat) < 0.25, lat                   # the delay is 0.3 s: it slept, then woke
    st = out["latency_stats"]
    assert st["wakeups"] - out["idle_irq_stats"]["wakeups"] >= 4 and st["signals"] >= st["wakeups"], st
    assert out["bursts"]["got"] == 1072 and out["bursts"]["bad"] == 0
    assert out["bursts"]["expected"] == out["bursts"]["sender_seq"]
    assert out["burst_stats"]["wakeups"] >= out["latency_stats"]["wakeups"] + 3, out["burst_stats"]
    for key in ("stream_irq", "stream_poll"):
        assert (out[key]["got"], out[key]["bad"]) == (5000, 0), out[key]
    assert out["flag_after"] is False                                  # masked again while polling
    assert out["after_close"] == {"fds_closed": [True], "msix": False}
    re = out["reopen"]
    assert re["config"] == 24 and re["mac"] == b.mac and re["vectors"]["rx"] == 0
    assert None not in re["latency"] and re["stats"]["wakeups"] >= 2, re
    assert out["polling"] == {"config": 20, "mac": b.mac, "msix": False, "interrupts": None}
    assert out["idle_poll"]["cpu"] > 0.5 * out["idle_poll"]["wall"]   # polling spins: the contrast
    assert None not in out["latency_poll"]
    assert out["sender"] == "closed"
    assert out["uio"] is not None and "VFIO" in out["uio"], out["uio"]
    assert out["driver_after_uio"] == "uio_pci_generic"


def test_killed_sender_stops_dma_uio_guard_and_vfio_reset(guest):
    """A process sending on NIC 0 dies without closing it: by SIGKILL or a
    segfault under UIO (the DMA guard clears Bus Master Enable), by SIGKILL
    under VFIO (the kernel resets the device when its file closes). Within
    1 s COMMAND.BME reads 0, and NIC 1 receives nothing over the next 2 s."""
    a, b = guest.nic(0), guest.nic(1)
    out = run(guest, """
        import guest_dma
        rx = ixypy.open(B, method="vfio")
        res = {f"{m} {d}": guest_dma.kill_sender(A, rx, m, d)
               for m, d in (("uio", "SIGKILL"), ("uio", "segfault"), ("vfio", "SIGKILL"))}
        rx.close()
        for addr in (A, B):
            PciDevice(addr).release()
        report(**res)
    """, A=a.address, B=b.address, timeout=300)
    for case, res in out.items():
        assert "bind" not in res, (case, res)
        assert res["started"] == "sending" and res["before"] > 0 and res["bme_while_sending"], (case, res)
        assert res["returncode"] == (-11 if "segfault" in case else -9), (case, res)
        assert res["bme_cleared_after"] is not None and res["bme_cleared_after"] <= 1.0, (case, res)
        assert res["after"] == 0, (case, res)
