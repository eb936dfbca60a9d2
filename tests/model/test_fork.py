"""Worker processes forked after the sim devices were opened (a process per
queue): each child drives its own rx/tx queue pair, the parent keeps the
devices, its engine thread plays the models, and what the children did
shows in the models the parent reads (csrc/sim/sim_shared.h)."""
import ctypes
import errno
import json
import os
import signal
import time
import traceback

import ixypy
from ixypy import PacketBatch
from ixypy.fastpath.loops import ForwardLoop
from ixypy.sim._model import IntelModel

from .conftest import MAC0, MAC1, DmaMem, Nic, frame

PR_SET_PDEATHSIG = 1
SECONDS = 0.5


def fork_worker(work):
    """A child running work() -> a dict, reported as JSON on a pipe; it ends
    with os._exit whatever happens, and dies with the parent. Returns (pid,
    the pipe's read end)."""
    parent = os.getpid()
    r, w = os.pipe()
    pid = os.fork()
    if pid:
        os.close(w)
        return pid, r
    code = 1
    try:
        os.close(r)
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() == parent:
            os.write(w, json.dumps(work()).encode())
            code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)


def reports(workers, timeout=30.0):
    """Each worker's report once it has exited (killed after timeout)."""
    deadline = time.monotonic() + timeout
    out = []
    for pid, r in workers:
        while os.waitpid(pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise AssertionError(f"worker {pid} still ran after {timeout} s")
            time.sleep(0.01)
        with os.fdopen(r, "rb") as f:
            data = f.read()
        assert data, f"worker {pid} failed (its traceback is on stderr)"
        out.append(json.loads(data))
    return out


def forward_queue(src, dst, queue, rx_held):
    """rx of src's queue to tx of dst's for SECONDS: what it forwarded, and
    where the buffers of the rx queue's pool are then: free, in the rx queue
    (rx_held(rxq)) or on dst's tx queue."""
    def work():
        batch = PacketBatch(32)
        rxq, txq = src.rx_queue(queue), dst.tx_queue(queue)
        forwarded = ForwardLoop([(rxq, txq, batch)]).run(SECONDS)
        batch.free()
        txq.reclaim()
        return {"forwarded": forwarded, "bufs": src.rx_mempools[queue].free_count + rx_held(rxq) + txq.in_flight}
    return work


def test_a_worker_process_per_rss_queue_forwards_on_the_parents_devices():
    """Two children, one per RSS queue, forward source -> sink; the sink's
    own counters, read in the parent, count every packet they sent, and each
    child's rx pool is whole. Tried: the models calloc'd and the DMA memory
    MAP_PRIVATE (before sim_shared.h): the children forwarded millions on
    copies of their own, the parent's sink counted 0 of them; the models
    shared but the DMA memory MAP_PRIVATE: each child forwarded 511 packets,
    about a ring's worth, and no more."""
    with ixypy.open("sim:source", 2, 2) as src, ixypy.open("sim:sink", 2, 2) as dst:
        src.enable_rss(2)
        got = reports([fork_worker(forward_queue(src, dst, q, lambda rxq: rxq.size)) for q in range(2)])
        assert min(g["forwarded"] for g in got) > 10_000
        dst.flush_tx(timeout=10.0)
        assert dst.stats().tx_packets == sum(g["forwarded"] for g in got)
        assert [g["bufs"] for g in got] == [pool.num_bufs for pool in src.rx_mempools]
        assert not src.bus.model_errors() and not dst.bus.model_errors()


def test_a_worker_process_forwards_on_the_parents_virtio_devices():
    """One child forwards virtio source -> sink: its notifies wake the
    parent's engine; the sink model counts every packet, in order. Tried as
    above: the parent's sink counted 0; with the DMA memory MAP_PRIVATE the
    child forwarded 512 packets."""
    with ixypy.open("sim:virtio-source") as src, ixypy.open("sim:virtio-sink") as dst:
        (got,) = reports([fork_worker(forward_queue(src, dst, 0, lambda rxq: rxq.chains_posted))])
        assert got["forwarded"] > 10_000
        sink = dst.bus.function
        deadline = time.monotonic() + 5
        while sink.wire_stats()["tx_packets"] < got["forwarded"] and time.monotonic() < deadline:
            time.sleep(0.001)
        assert sink.wire_stats()["tx_packets"] == got["forwarded"]
        assert sink.wire_stats()["tx_seq_errors"] == 0
        assert got["bufs"] == src.rx_mempool.num_bufs
        assert not src.bus.model_errors() and not dst.bus.model_errors()


def forwards_a_count(src, dst, count=10_000):
    """The parent's devices still forward: count packets, all on dst's wire."""
    before = dst.stats().tx_packets
    forwarded = ForwardLoop([(src.rx_queue(0), dst.tx_queue(0), PacketBatch(32))]).run(10.0, count=count)
    dst.flush_tx(timeout=10.0)
    return forwarded >= count and dst.stats().tx_packets - before == forwarded


def test_a_worker_process_cannot_change_the_models_it_inherited():
    """The models and their engine are the parent's: a child's DMA memory
    (allocated after the fork, so its own) is refused, its stop and close
    of a model do nothing to it, its eventfds are refused (the parent's
    engine would write to its own fds of those numbers). Tried:
    sim_worker_owned always true: the child's mempool was mapped, its
    eventfd taken, and its close took the parent's model apart (the
    parent's dma_unmap then found no mapping)."""
    with ixypy.open("sim:source") as src, ixypy.open("sim:sink") as dst:
        def work():
            refused = []
            for call in (lambda: dst.mempool(64), lambda: dst.bus.function.set_irq_eventfd(0, os.eventfd(0))):
                try:
                    call()
                except OSError as err:
                    refused.append(err.errno)
            dst.bus.sim.stop()
            dst.bus.sim.close()
            return {"refused": refused}
        (got,) = reports([fork_worker(work)])
        assert got["refused"] == [errno.EPERM, errno.EPERM]
        assert forwards_a_count(src, dst)


def test_a_worker_process_plays_models_of_its_own_on_an_engine_of_its_own():
    """A child that makes a model joins an engine of its own, whose thread
    plays it in the child, while the parent's engine plays the parent's.
    Tried: own_engine without its pid check (one engine for a process and
    those forked from it): the child's start of its model was refused
    (EPERM), the engine being the parent's."""
    with ixypy.open("sim:source") as src, ixypy.open("sim:sink") as dst:
        def work():
            sim = IntelModel(2, mac=MAC0)
            sim.start()
            mem = DmaMem(sim)
            a, b = Nic(sim.function(0), mem), Nic(sim.function(1), mem)
            sim.function(0).wire_pair(sim.function(1))
            a.up(rx=False)
            b.up(tx=False)
            frames = [frame(MAC1, size=s) for s in (60, 100, 1514)]
            a.send(frames)
            got = b.recv(want=3)
            sim.close()
            return {"same": got == frames}
        (got,) = reports([fork_worker(work)])
        assert got["same"]
        assert forwards_a_count(src, dst)
