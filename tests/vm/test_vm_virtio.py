"""The legacy virtio-net driver against QEMU's virtio-net in the guest.

One guest for the module: NICs 0 and 1 wired together on hub 0, NIC 2 alone
on its own hub (a sink: what it sends goes nowhere, so it never stalls).
Every script hands its NICs back to the kernel at the end (ixypy binds them
again as each test asks), so the tests do not depend on each other's order.
"""
import json
import textwrap

import pytest

from .guest import Nic, guest_script

pytestmark = pytest.mark.vm

GUEST_NICS = [Nic("virtio", hub=0), Nic("virtio", hub=0), Nic("virtio", hub=None)]

PROLOGUE = """
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
        assert res["tx_stats"]["tx_packets"] == 20000 and res["tx_stats"]["tx_bytes"] == 20000 * 60
        assert res["rx_stats"]["rx_packets"] == 20000 and res["rx_stats"]["rx_bytes"] == 20000 * 60
        assert res["free"] == [True, True]
    print(out)
