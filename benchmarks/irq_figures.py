"""Interrupt figures on the sim device (run: PYTHONPATH=src python benchmarks/irq_figures.py):
idle CPU with/without interrupts, wake-up latency, sender->receiver rate polling vs adaptive."""
import statistics, threading, time, sys
import ixypy
from ixypy import PacketBatch
from ixypy.packets import udp_frame

def idle_cpu(interrupts, secs=2.0):
    with ixypy.open("sim:sink", interrupts=interrupts) as dev:
        batch = PacketBatch(32)
        w0, p0, t0 = time.monotonic(), time.process_time(), time.thread_time()
        while time.monotonic() - w0 < secs:
            dev.rx_batch(0, batch, timeout=0.05)
        w = time.monotonic() - w0
        return (time.process_time() - p0) / w, (time.thread_time() - t0) / w

def latency(interrupts, trials=40):
    with ixypy.open("sim:sink", interrupts=interrupts) as dev:
        fn, frame = dev.bus.function, udp_frame(dst_mac=dev.mac)
        batch = PacketBatch(32)
        lat = []
        for i in range(trials):
            dev.rx_batch(0, batch, timeout=0.02)      # idle: asleep when the frame comes
            stamp = []
            def inj():
                time.sleep(0.01)
                stamp.append(time.perf_counter()); fn.inject(frame)
            th = threading.Thread(target=inj); th.start()
            got = dev.rx_batch(0, batch, timeout=2.0)
            t = time.perf_counter(); th.join()
            assert got == 1
            lat.append(t - stamp[0]); batch.free()
        return statistics.median(lat) * 1e6, max(lat) * 1e6

def run(mode, secs=2.0):
    a = ixypy.open("sim:pair0"); b = ixypy.open("sim:pair1", interrupts=(mode == "adaptive"))
    pool = a.mempool(); stop = threading.Event(); sent = [0]
    def sender():
        batch = PacketBatch(32)
        while not stop.is_set():
            batch.alloc(pool, length=60); sent[0] += a.tx_batch(0, batch)
        batch.free()
    th = threading.Thread(target=sender); th.start()
    rb = PacketBatch(32); got = 0; t0 = time.monotonic()
    while time.monotonic() - t0 < secs:
        got += b.rx_batch(0, rb, timeout=0.1) if mode == "adaptive" else b.rx_batch(0, rb)
        rb.free()
    el = time.monotonic() - t0; stop.set(); th.join()
    st = b.stats(); irq = b.interrupts.stats(0) if b.interrupts else {}
    a.close(); b.close()
    print(f"{mode:9s}: received {got/el/1e6:.3f} Mpps, sent {sent[0]/el/1e6:.3f} Mpps, rx_dropped {st.rx_dropped} {irq}", flush=True)

if __name__ == "__main__":
    for irq in (False, True):
        p, t = idle_cpu(irq)
        print(f"idle CPU interrupts={irq}: process {p:.3f} s/s, receiver thread {t:.4f} s/s")
    for irq in (True, False):
        med, mx = latency(irq)
        print(f"wake-up latency interrupts={irq}: median {med:.0f} us, max {mx:.0f} us (40 trials)")
    for m in ("polling", "adaptive"):
        run(m)
