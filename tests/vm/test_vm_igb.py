"""The igb driver against QEMU's 82576 model, in one guest boot.

NICs: A and B on hub 1 (A over UIO, B over VFIO), C and D on hub 2. Every
test hands its NICs back to the kernel's igb, so the tests are independent
of each other's order. Guest-side helpers: igb_guest.py.
"""
import json

import pytest

from .guest import Nic, guest_script

pytestmark = pytest.mark.vm

GUEST_NICS = [
    Nic("igb", hub=1, mac="52:54:00:1b:00:0a"),
    Nic("igb", hub=1, mac="52:54:00:1b:00:0b"),
    Nic("igb", hub=2, mac="52:54:00:1b:00:0c"),
    Nic("igb", hub=2, mac="52:54:00:1b:00:0d"),
]
CRC = 4


def result(res) -> dict:
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_igb_to_igb_through_a_hub_every_packet_in_order_stats_agree(guest):
    a, b = guest.nic(0), guest.nic(1)
    out = result(guest.run(guest_script("""
        import ixypy
        from ixypy.packets import udp_frame
        from ixypy.pci import PciDevice
        from igb_guest import emit, stats_dict, transfer

        try:
            with ixypy.open(A, method="uio") as tx, ixypy.open(B, method="vfio") as rx:
                info = {"tx": [tx.driver_name, tx.mac, tx.link_speed()], "rx": [rx.driver_name, rx.mac, rx.link_speed()]}
                frames = [udp_frame(60, dst_mac=rx.mac), udp_frame(1514, dst_mac=rx.mac), udp_frame(333, dst_mac=rx.mac)]
                out = transfer(tx, rx, N, frames, window=200)
                out.update(info, tx_stats=stats_dict(tx), rx_stats=stats_dict(rx))
                pools = [rx.rx_mempool]
            out["rx_pool_full"] = pools[0].free_count == pools[0].num_bufs
        finally:
            out["released"] = [PciDevice(A).release(), PciDevice(B).release()]
        emit(out)
    """, A=a.address, B=b.address, N=3000), timeout=120))
    assert out["tx"] == ["igb", a.mac, 1000] and out["rx"] == ["igb", b.mac, 1000]
    n = 3000
    assert (out["sent"], out["received"], out["out_of_order"], out["expected"]) == (n, n, 0, n)
    assert out["sent_bytes"] == out["received_bytes"]
    tx, rx = out["tx_stats"], out["rx_stats"]
    # GOTC and GORC count each frame's CRC
    assert (tx["tx_packets"], tx["tx_bytes"]) == (n, out["sent_bytes"] + CRC * n)
    assert (rx["rx_packets"], rx["rx_bytes"]) == (n, out["received_bytes"] + CRC * n)
    assert rx["rx_dropped"] == 0 and rx["rx_errors"] == 0
    assert out["rx_pool_full"]
    assert out["released"] == ["igb", "igb"]
