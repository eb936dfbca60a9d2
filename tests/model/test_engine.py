"""The engine (csrc/sim/sim_worker.h): one thread per process plays every
started device model, whatever its kind, and a stopped model is out of it."""
import os
import subprocess
import sys
import textwrap

import pytest

import ixypy
from ixypy import PacketBatch, apps
from ixypy.sim._model import IntelModel, VirtioSim

# Run in a fresh interpreter: a model left started by another test would
# already have the engine running. Prints the process's thread count with
# no model, with three models of two kinds started, with one of them
# stopped, and with all closed.
COUNT_THREADS = textwrap.dedent("""
    import os
    from ixypy.sim._model import IntelModel, VirtioSim

    def threads():
        return len(os.listdir("/proc/self/task"))

    counts = [threads()]
    models = [IntelModel(1, variant="82599"), IntelModel(2, variant="82576"), VirtioSim(1)]
    for m in models:
        m.start()
    counts.append(threads())
    models[0].stop()
    counts.append(threads())
    for m in models:
        m.close()
    counts.append(threads())
    print(*counts)
""")


def test_started_models_share_one_thread():
    """With one thread per model (the old sim_worker.c, tried) this reads
    base+3 and base+2 instead of base+1."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, "-c", COUNT_THREADS], env=env, capture_output=True, text=True,
                         check=True, timeout=60).stdout
    base, started, one_stopped, closed = map(int, out.split())
    assert (started, one_stopped, closed) == (base + 1, base + 1, base)


def test_a_stopped_model_is_out_of_the_engine_while_others_run():
    """poll() works on a stopped model (the engine runs none of it) and is
    refused on one still in the engine, which another model shares."""
    with IntelModel(1) as a, VirtioSim(1) as b:
        a.start()
        b.start()
        b.stop()
        assert b.poll() >= 0
        with pytest.raises(RuntimeError, match="stopped"):
            a.poll()
        b.start()
        with pytest.raises(RuntimeError, match="stopped"):
            b.poll()


def test_models_started_and_closed_while_the_engine_plays_traffic():
    """Membership changes while the engine sweeps a model under traffic
    (the member list is replaced, never freed under a running sweep):
    the traffic goes on and every model comes and goes cleanly."""
    with ixypy.open("sim:source") as src, ixypy.open("sim:sink") as dst:
        for _ in range(200):
            with IntelModel(1) as m:
                m.start()
        forwarded = apps.forward([(src, dst)], apps.Limits(count=50_000), 32)
        assert forwarded >= 50_000
        assert dst.stats().tx_packets == forwarded


@pytest.mark.parametrize("source,sink", [("sim:virtio-source", "sim:sink"), ("sim:source", "sim:virtio-sink"),
                                         ("sim:igb-source", "sim:virtio-sink")])
def test_forward_between_models_of_different_kinds(source, sink):
    """A buffer the one model received is sent by the other: the models share
    the process's DMA domain and its engine. Tried: a virtio model given a DMA
    map of its own (not the process's) makes the sink refuse the frames."""
    with ixypy.open(source) as src, ixypy.open(sink) as dst:
        forwarded = apps.forward([(src, dst)], apps.Limits(count=100_000), 32)
        dst.flush_tx()
        assert forwarded >= 100_000
        assert src.stats().rx_packets >= forwarded
        assert dst.stats().tx_packets == forwarded
        assert dst.bus.model_errors() == []


def test_a_queue_that_finds_no_work_sweeps_the_models_itself():
    """rx/forward without work run a sweep in the driver's thread (the
    queues' idle hook), so the models progress when the engine's thread has
    no core. On an idle cable every call finds no work; the engine's thread
    is between sweeps most of the time, so some of 10000 calls sweep. With
    the hook unset (the negative control) none does."""
    from ixypy.fastpath.queue import set_idle_hook
    from ixypy.sim._model import engine_help_hook, engine_helped_sweeps

    def helped_by_idle_calls() -> int:
        with ixypy.open("sim:pair0") as a, ixypy.open("sim:pair1") as b:
            rxq, txq, batch = a.rx_queue(0), b.tx_queue(0), PacketBatch(32)
            before = engine_helped_sweeps()
            for _ in range(10_000):
                rxq.forward(txq, batch)
            return engine_helped_sweeps() - before

    assert helped_by_idle_calls() > 0
    set_idle_hook(None)
    try:
        assert helped_by_idle_calls() == 0
    finally:
        set_idle_hook(engine_help_hook())


# Run in a fresh interpreter (its threads' CPUs are set here): the driver's
# thread on CPU argv[1], the engine's on argv[2], an idle cable forwarded for
# a second (every call finds no work, so the driver helps whenever the
# engine sleeps); prints helped sweeps, yields and pauses of the engine.
GIVE_WAY = textwrap.dedent("""
    import os, sys, time
    import ixypy
    from ixypy import PacketBatch
    from ixypy.sim._model import engine_gave_way, engine_helped_sweeps

    driver_cpu, engine_cpu = int(sys.argv[1]), int(sys.argv[2])
    os.sched_setaffinity(0, {driver_cpu})
    threads = set(os.listdir("/proc/self/task"))
    with ixypy.open("sim:pair0") as a, ixypy.open("sim:pair1") as b:
        (engine,) = set(os.listdir("/proc/self/task")) - threads
        os.sched_setaffinity(int(engine), {engine_cpu})
        rxq, txq, batch = a.rx_queue(0), b.tx_queue(0), PacketBatch(32)
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            for _ in range(1000):
                rxq.forward(txq, batch)
        print(engine_helped_sweeps(), *engine_gave_way())
""")


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_an_engine_yields_only_to_a_driver_that_helped_from_its_cpu():
    """Sharing a CPU with the helping driver, the engine yields it (the
    driver gets it); on a CPU of its own it pauses and sweeps again, since a
    yield would leave the sweep count still and draw the driver into
    sweeping again, the two taking turns at the models (`fwd sim:source
    sim:sink` fell to 10-13 Mpps on some runs so). Tried: give_way yielding
    on any CPU (the old engine) makes the second case count yields."""
    def run(driver_cpu: int, engine_cpu: int):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        out = subprocess.run([sys.executable, "-c", GIVE_WAY, str(driver_cpu), str(engine_cpu)], env=env,
                             capture_output=True, text=True, check=True, timeout=60).stdout
        return tuple(map(int, out.split()))

    cpu0, cpu1 = sorted(os.sched_getaffinity(0))[:2]
    helped, yielded, paused = run(cpu0, cpu0)
    assert helped > 0 and yielded > 0
    helped, yielded, paused = run(cpu0, cpu1)
    assert helped > 0 and paused > 0 and yielded == 0
