"""``--plot FILE.png``: a picture of what a measuring command saw, drawn with
matplotlib (the ``plot`` extra; the Agg backend, no screen needed).

* ``rate_over_time``: each device's rx and tx packet rate, one point per
  second (the rows the commands print each second), for pktgen and fwd.
* ``latency_histogram``: the latency distribution of ``ixypy latency``,
  from its HdrHistogram, with the percentiles it reports marked.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from .errors import MissingDependency
from .latency import PERCENTILES, LatencyResult


def require() -> Any:
    """matplotlib.pyplot on the Agg backend, or MissingDependency in one line."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingDependency("--plot needs matplotlib, which is not installed",
                                "install the plot extra: `pip install 'ixypy[plot]'` (or `pip install matplotlib`)"
                                ) from None
    return plt


def check_writable(path: Path) -> None:
    """A --plot path that cannot be written fails now, not after the run."""
    path.open("a").close()


def rate_over_time(rows: Sequence[dict], path: Path, title: str) -> None:
    """Rx and tx Mpps of each device over time from per-second rows (keys
    device, t, rx_mpps, tx_mpps: cli.Meter's); a direction that stayed at
    zero is left out."""
    plt = require()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for device in dict.fromkeys(r["device"] for r in rows):
        mine = [r for r in rows if r["device"] == device]
        for way in ("rx", "tx"):
            mpps = [r[f"{way}_mpps"] for r in mine]
            if any(mpps):
                ax.plot([r["t"] for r in mine], mpps, marker=".", label=f"{device} {way}")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("Mpps")
    ax.set_ylim(bottom=0)
    _finish(plt, fig, ax, path, title)


def latency_histogram(result: LatencyResult, path: Path) -> None:
    """Probes per latency bucket (µs, log scale: HdrHistogram's buckets grow
    with the value), the reported percentiles as vertical lines."""
    plt = require()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if result.received:
        buckets = [(v.value_iterated_to / 1000, v.count_at_value_iterated_to)
                   for v in result.histogram.get_recorded_iterator()]
        ax.bar([us for us, _ in buckets], [n for _, n in buckets], width=[us * 0.02 for us, _ in buckets],
               color="tab:blue")
        ax.set_xscale("log")
        for q in PERCENTILES:
            us = (result.percentile_ns(q) or 0) / 1000
            ax.axvline(us, color="tab:red", linewidth=0.8, linestyle="--")
            ax.annotate(f"p{q:g} {us:.1f}", (us, 1), xycoords=("data", "axes fraction"), rotation=90,
                        va="top", ha="right", fontsize=8)
    ax.set_xlabel("latency (µs)")
    ax.set_ylabel("probes")
    _finish(plt, fig, ax, path, f"{result.tx} -> {result.rx}: {result.received} of {result.sent} probes, "
                                f"{result.lost} lost")


def _finish(plt: Any, fig: Any, ax: Any, path: Path, title: str) -> None:
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
