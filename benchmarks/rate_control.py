"""How well pktgen's rate holds, measured where frames leave: the 82599
model logs when each frame leaves the tx ring (IntelFunction.log_departures;
the frames the model's engine takes in one pass share a time), while
apps.pktgen sends paced at 1, 5 and 14.88 Mpps (60-byte frames, batch 32:
the most a round sends) on sim:sink. The pacing is per frame
(PktgenLoop): a round sends the frames due by then.

Per rate, from the departure times t_k (k = 0, 1, ...):
* 1 s windows: frames leaving in [t_0 + i, t_0 + i + 1), as error against
  the rate (the issue's target: within 1 %);
* lateness: t_k - (t_0 + k / rate), how far frame k left from its due time
  (negative: early against frame 0's departure), percentiles in us;
* inter-departure gaps t_{k+1} - t_k against the period 1 / rate:
  percentiles, and the share of 0 (frames that left together: handed over
  in one round, or taken in one pass of the model's engine).

Run: python benchmarks/rate_control.py [SECONDS]     (default 3; needs NumPy)
"""
from __future__ import annotations

import sys

import numpy as np

import ixypy
from ixypy import apps
from ixypy.packets import udp_flows

RATES_MPPS = (1.0, 5.0, 14.88)
BATCH = 32


def departures(rate_pps: float, seconds: float) -> np.ndarray:
    with ixypy.open("sim:sink") as dev:
        fn = dev.bus.function
        count = int(rate_pps * seconds)
        fn.log_departures(count)
        apps.pktgen(dev, udp_flows(1, 60), apps.Limits(count=count, duration=None, stop=lambda: False), BATCH,
                    rate_pps)
        dev.flush_tx()
        t = np.frombuffer(fn.departures(), dtype=np.int64)
        fn.log_departures(0)
    return t


def report(rate_pps: float, t: np.ndarray) -> str:
    rel = (t - t[0]) / 1e9
    windows = np.bincount(rel.astype(np.int64))[:-1]          # whole seconds only
    window_err = (windows / rate_pps - 1) * 100
    late_us = (rel - np.arange(len(t)) / rate_pps) * 1e6
    gaps_ns = np.diff(t)
    q = np.percentile
    return (f"| {rate_pps / 1e6:g} | {len(t)} | {', '.join(f'{e:+.2f}' for e in window_err)} | "
            f"{q(late_us, 50):+.1f} / {q(late_us, 99):+.1f} / {late_us.max():+.1f} | {1e9 / rate_pps:.1f} | "
            f"{q(gaps_ns, 1):.0f} / {q(gaps_ns, 50):.0f} / {q(gaps_ns, 99):.0f} / {gaps_ns.max():.0f} | "
            f"{(gaps_ns == 0).mean() * 100:.1f} % |")


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    print("| Mpps | frames | 1 s windows, error % | lateness us: p50 / p99 / max | period ns | "
          "gap ns: p1 / p50 / p99 / max | gaps of 0 |")
    print("|---|---|---|---|---|---|---|")
    for mpps in RATES_MPPS:
        print(report(mpps * 1e6, departures(mpps * 1e6, seconds)), flush=True)


if __name__ == "__main__":
    main()
