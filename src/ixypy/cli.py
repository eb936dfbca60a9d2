"""The `ixypy` command: pktgen, replay, ndr, fwd, capture, devices, bind, unbind, hugepages.

DEV is a PCI address (0000:03:00.0) or a sim device (sim:sink, sim:source,
sim:loop, sim:pair0, sim:pair1; sim:igb-sink ... for an 82576; sim:virtio-sink
... on the virtio-net model; options after a comma, sim:source,flows=N): see
dev_help(). Ctrl-C or SIGTERM stops a running
app cleanly: final stats, queues off, DMA stopped, memory released.
"""
from __future__ import annotations

import csv
import json
import signal
import sys
import time
from contextlib import ExitStack
from dataclasses import asdict, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Dict, List, Optional, TextIO

import click

from . import apps, latency, ndr
from . import open as open_device
from .device import FCS_BYTES, L1_OVERHEAD_BYTES, Device, DeviceStats, l1_bytes, l1_pps, link_text
from .drivers.intel import IntelDevice
from .errors import InvalidAddress, InvalidRate, InvalidTemplate, IxyError
from .packets import MAX_FRAME, MIN_FRAME, SEQ_OFFSET, read_capture, udp_flows
from .sim import ALIASES as SIM_ALIASES, DEFAULT_SOURCE_FLOWS, MODELS as SIM_MODELS
from .vapps.commands import COMMANDS as VECTOR_COMMANDS
from .vapps.commands import check_json_writable, json_file_option, write_json

if TYPE_CHECKING:
    from rich.table import Table


def sim_addresses() -> List[str]:
    """Every sim device address, from the sim module's table of models and wires."""
    return [f"sim:{prefix}{wire}" for prefix, (_, wires) in SIM_MODELS.items() for wire in wires]


def _sim_help() -> str:
    by_model: Dict[str, List[str]] = {}
    for prefix, (model, wires) in SIM_MODELS.items():
        by_model.setdefault(model, []).extend(f"sim:{prefix}{wire}" for wire in wires)
    aliases = "".join(f"; sim:{a} is an alias of sim:{b}" for a, b in SIM_ALIASES.items())
    flows = (f"; a source's frames carry {DEFAULT_SOURCE_FLOWS} flows (source IPs 10.0.0.2 upward), "
             f"sim:source,flows=N sends N")
    return "; ".join(f"{model}: {', '.join(names)}" for model, names in by_model.items()) + aliases + flows


def dev_help(*names: str) -> str:
    """What a DEV argument may be, for a command's --help."""
    subject = f"{names[0]} is" if len(names) == 1 else f"{' and '.join(names)} are each"
    return (f"{subject} the PCI address of a NIC bound with `ixypy bind` (e.g. 0000:03:00.0, as `ixypy devices` "
            f"lists them) or a sim device, no hardware needed ({_sim_help()}).")


class Meter:
    """Per-second and total rates of a set of devices, printed as a live
    table (rich) on a terminal, as plain lines otherwise, or as JSON lines.

    Two bit rates each way, as TRex reports them: L2 (rx_l2_gbps,
    tx_l2_gbps) counts the frames with their 4-byte FCS, DeviceStats' bytes;
    L1 (rx_l1_gbps, tx_l1_gbps) is what the wire carries, 20 bytes more per
    frame (preamble, SFD, inter-frame gap): 10 Gbit/s L1 is a 10GbE link's
    line rate, 14.88 Mpps of 60-byte frames. Rates count from the app
    loop's start (its tick(0.0)), not from its set-up."""

    def __init__(self, devices: List[Device], as_json: bool) -> None:
        self.devices = devices
        self.as_json = as_json
        self.start = time.perf_counter()
        self.last_time = self.start
        self.last: Dict[str, DeviceStats] = {d.address: DeviceStats() for d in devices}
        self.history: List[dict] = []     # every per-second row (--plot)
        self.live = None
        if not as_json and sys.stdout.isatty():
            from rich.live import Live

            self.live = Live(self._table([]), refresh_per_second=4, transient=False)
            self.live.start()

    @staticmethod
    def rates(delta: DeviceStats, seconds: float) -> Dict[str, float]:
        def gbps(nbytes: float) -> float:
            return nbytes * 8 / seconds / 1e9

        return {"rx_mpps": delta.rx_packets / seconds / 1e6, "tx_mpps": delta.tx_packets / seconds / 1e6,
                "rx_l1_gbps": gbps(l1_bytes(delta.rx_packets, delta.rx_bytes)), "rx_l2_gbps": gbps(delta.rx_bytes),
                "tx_l1_gbps": gbps(l1_bytes(delta.tx_packets, delta.tx_bytes)), "tx_l2_gbps": gbps(delta.tx_bytes),
                "rx_dropped": delta.rx_dropped}

    def _rows(self) -> List[dict]:
        now = time.perf_counter()
        seconds = max(now - self.last_time, 1e-9)
        rows = []
        for dev in self.devices:
            total = dev.stats()
            rows.append({"device": dev.address, "t": round(now - self.start, 3),
                         **self.rates(total - self.last[dev.address], seconds)})
            self.last[dev.address] = total
        self.last_time = now
        return rows

    @staticmethod
    def _table(rows: List[dict]) -> "Table":
        """Two lines a device, rx and tx: Mpps, L1 and L2 Gbit/s (and rx's drops)."""
        from rich.table import Table

        table = Table(title="ixypy", caption="L1: on the wire; L2: the frames with their FCS")
        table.add_column("device", no_wrap=True)
        table.add_column("")
        for col in ("Mpps", "L1 Gbit/s", "L2 Gbit/s", "dropped"):
            table.add_column(col, justify="right", no_wrap=True)
        for r in rows:
            for way in ("rx", "tx"):
                table.add_row(r["device"] if way == "rx" else "", way,
                              *(f"{r[f'{way}_{k}']:.3f}" for k in ("mpps", "l1_gbps", "l2_gbps")),
                              str(r["rx_dropped"]) if way == "rx" else "", end_section=way == "tx")
        return table

    def tick(self, elapsed: float) -> None:
        """An app loop's tick: 0.0 as it starts (rates count from here), then
        about once a second."""
        if elapsed == 0.0:
            self.start = self.last_time = time.perf_counter()
            return
        rows = self._rows()
        self.history.extend(rows)
        if self.live is not None:
            self.live.update(self._table(rows))
            return
        for r in rows:
            if self.as_json:
                print(json.dumps(r), flush=True)
            else:
                print(f"[{r['device']}] rx {r['rx_mpps']:.3f} Mpps {r['rx_l1_gbps']:.3f} Gbit/s L1 "
                      f"{r['rx_l2_gbps']:.3f} L2 | tx {r['tx_mpps']:.3f} Mpps {r['tx_l1_gbps']:.3f} Gbit/s L1 "
                      f"{r['tx_l2_gbps']:.3f} L2 | rx dropped {r['rx_dropped']}", flush=True)

    def summary(self, **extra: object) -> None:
        if self.live is not None:
            self.live.stop()
        seconds = max(time.perf_counter() - self.start, 1e-9)
        for dev in self.devices:
            self.last[dev.address] = total = dev.stats()
            out = {"summary": True, "device": dev.address, "seconds": round(seconds, 3),
                   **{k: v for k, v in vars(total).items()}, **self.rates(total, seconds), **extra}
            if self.as_json:
                print(json.dumps(out), flush=True)
            else:
                print(f"[{dev.address}] total: rx {total.rx_packets} packets {total.rx_bytes} bytes, "
                      f"tx {total.tx_packets} packets {total.tx_bytes} bytes, rx dropped {total.rx_dropped}; "
                      f"{seconds:.2f} s, rx {out['rx_mpps']:.3f} Mpps {out['rx_l1_gbps']:.3f} Gbit/s L1 "
                      f"{out['rx_l2_gbps']:.3f} L2, tx {out['tx_mpps']:.3f} Mpps {out['tx_l1_gbps']:.3f} Gbit/s L1 "
                      f"{out['tx_l2_gbps']:.3f} L2"
                      + "".join(f", {k} {v}" for k, v in extra.items()), flush=True)


IDLE_HINT_SECONDS = 3.0


class IdleHint:
    """A forwarder's hint: when none of its devices has received a frame for
    `after` seconds, say so once, with each device's link and what to do (a
    line on stderr; with --json, a JSON line with a "hint" key on stdout).
    Fed each tick's totals."""

    def __init__(self, devices: List[Device], as_json: bool, after: float = IDLE_HINT_SECONDS) -> None:
        self.devices = devices
        self.as_json = as_json
        self.after = after
        self.arrived = 0            # frames received, dropped or refused, all devices, at the last change
        self.arrived_at = 0.0       # the loop's elapsed seconds then
        self.given = False

    def check(self, elapsed: float, totals: Dict[str, DeviceStats]) -> None:
        if self.given:
            return
        arrived = sum(t.rx_packets + t.rx_dropped + t.rx_errors for t in totals.values())
        if arrived != self.arrived:
            self.arrived, self.arrived_at = arrived, elapsed
        elif elapsed - self.arrived_at >= self.after:
            self.given = True
            self._give()

    def _give(self) -> None:
        links = {dev.address: dev.link_speed() for dev in self.devices}
        sides = " or ".join(f"{address} ({link_text(mbits)})" for address, mbits in links.items())
        if all(links.values()):
            what_to_do = "is anything sending to them? e.g. `ixypy pktgen DEV` on a port cabled to one of them"
        else:
            what_to_do = "a link is down: check its cable and the port at the other end"
        hint = f"nothing received on {sides} for {self.after:g} s; {what_to_do}"
        if self.as_json:
            print(json.dumps({"hint": hint, "links": links}), flush=True)
        else:
            print(f"ixypy: hint: {hint}", file=sys.stderr, flush=True)


class StopOnSignals:
    """Ctrl-C (SIGINT) and SIGTERM ask the running app loop to stop at its
    next batch, so it returns its count and the device is closed cleanly."""

    def __init__(self) -> None:
        self.stopped = False

    def __call__(self) -> bool:
        return self.stopped

    def _handle(self, signum, frame) -> None:
        self.stopped = True

    def __enter__(self) -> "StopOnSignals":
        self.previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


@click.group()
@click.version_option(package_name="ixypy")
def cli() -> None:
    """User-space network drivers for Python: packet generator, forwarder,
    capture, and device binding."""


for command in VECTOR_COMMANDS:
    cli.add_command(command)


def main(argv: Optional[List[str]] = None) -> None:
    """The entry point: errors are one line on stderr, never a traceback.
    Exit codes: 0 done, 1 the device or system said no, 2 bad arguments."""
    try:
        cli.main(args=argv, prog_name="ixypy", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as err:
        click.echo(err.format_message())
    except click.UsageError as err:
        _exit(f"{err.format_message()} (see `{err.ctx.command_path if err.ctx else 'ixypy'} --help`)", 2)
    except click.ClickException as err:
        _exit(err.format_message(), err.exit_code)
    except click.Abort:
        _exit("aborted", 1)
    except (InvalidAddress, InvalidTemplate, InvalidRate) as err:
        _exit(str(err), 2)
    except IxyError as err:
        _exit(str(err), 1)
    except OSError as err:
        _exit(f"{err.strerror or err}: {err.filename}" if err.filename else str(err), 1)


def _exit(message: str, code: int) -> None:
    click.echo(f"ixypy: error: {message}", err=True)
    sys.exit(code)


def limits_option(f):
    f = click.option("--count", "-n", type=click.IntRange(min=1), help="Stop after this many packets.")(f)
    f = click.option("--duration", "-t", type=click.FloatRange(min=0, min_open=True), help="Stop after this many seconds.")(f)
    return f


queues_option = click.option("--queues", type=click.IntRange(1, 64), default=1, show_default=True,
                             help="Queues to use, queue i of each device with a worker thread of its own "
                                  "(they run on as many cores; without the GIL).")
batch_option = click.option("--batch", "batch_size", type=click.IntRange(1, 512), default=32, show_default=True,
                            help="Packets per rx/tx call.")
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output: JSON lines.")


def plot_option(what: str):
    """--plot FILE.png: checked writable, matplotlib there, before any device opens."""
    def check(ctx: click.Context, param: click.Parameter, path: Optional[Path]) -> Optional[Path]:
        if path is not None:
            from . import plot

            plot.require()
            plot.check_writable(path)
        return path
    return click.option("--plot", "plot_file", type=click.Path(dir_okay=False, path_type=Path), callback=check,
                        help=f"Draw {what} into this PNG file (needs matplotlib: the plot extra).")


def plot_rates(meter: "Meter", path: Optional[Path], title: str) -> None:
    if path is not None:
        from . import plot

        plot.rate_over_time(meter.history, path, title)


@cli.command(help=f"Send UDP frames with a 64-bit sequence number at byte 42.\n\n{dev_help('DEV')}")
@click.argument("dev")
@click.option("--size", "-s", type=click.IntRange(MIN_FRAME, MAX_FRAME), default=MIN_FRAME, show_default=True,
              help="Frame size in bytes, without the 4-byte FCS (CRC) the NIC appends.")
@click.option("--rate", "rate_mpps", type=click.FloatRange(min=0, min_open=True),
              help="Rate in Mpps, paced frame by frame (with --queues N, each queue sends 1/N of it).")
@click.option("--gbps", "rate_gbps", type=click.FloatRange(min=0, min_open=True),
              help=f"Rate limit in Gbit/s on the wire (L1, as reported): each frame counts with its {FCS_BYTES}-byte "
                   f"FCS and {L1_OVERHEAD_BYTES} bytes of preamble, SFD and inter-frame gap, e.g. 84 bytes for "
                   f"--size 60; 10 is 10GbE line rate.")
@click.option("--flows", type=click.IntRange(1, 65536), default=1, show_default=True,
              help="Number of flows (source IPs 10.0.0.2 upward).")
@click.option("--template", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help=f"Send the frames of this pcap or pcapng file instead of UDP (each buffer keeps one frame; "
                   f"order is not kept: `ixypy replay` keeps it, and the timing). Frames shorter than {MIN_FRAME} "
                   f"bytes are padded with zeros to {MIN_FRAME}, as a NIC pads them; longer than {MAX_FRAME} are "
                   f"refused.")
@limits_option
@queues_option
@batch_option
@json_option
@plot_option("the packet rate over time, a point a second")
def pktgen(dev: str, size: int, rate_mpps: Optional[float], rate_gbps: Optional[float], flows: int,
           template: Optional[Path], count: Optional[int], duration: Optional[float], queues: int, batch_size: int,
           as_json: bool, plot_file: Optional[Path]) -> None:
    if rate_mpps and rate_gbps:
        raise click.UsageError("give --rate or --gbps, not both")
    frames = read_capture(template, f"--template {template}").frames if template else udp_flows(flows, size)
    rate_pps = rate_mpps * 1e6 if rate_mpps else None
    if rate_gbps:
        mean_frame = sum(len(f) for f in frames) / len(frames) + FCS_BYTES     # as DeviceStats counts it
        rate_pps = l1_pps(rate_gbps, mean_frame)
    with open_device(dev, tx_queues=queues) as device:
        meter = Meter([device], as_json)
        with StopOnSignals() as stop:
            sent = apps.pktgen(device, frames, apps.Limits(count, duration, stop), batch_size, rate_pps,
                               tick=meter.tick, queues=queues)
        meter.summary(sent=sent, **per_queue(device, "tx", queues))
    plot_rates(meter, plot_file, f"ixypy pktgen {dev}" + (f" at {rate_pps / 1e6:g} Mpps" if rate_pps else ""))


@cli.command(help=f"Replay pcap and pcapng files: their frames unchanged, in the files' order (file after "
                  f"file, each starting when the last frame of the one before is due), at the gaps of their "
                  f"timestamps. Frames shorter than {MIN_FRAME} bytes are padded with zeros to {MIN_FRAME}; longer "
                  f"than {MAX_FRAME} are refused. The summary gives each file's frames, bytes, whole passes, the "
                  f"time its passes took against its schedule, and how late frames left (mean, p50, p99, max in "
                  f"µs, measured at the send call).\n\n{dev_help('DEV')}")
@click.argument("dev")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--speed", type=click.FloatRange(min=0, min_open=True),
              help="Divide the gaps between frames by this (2: twice as fast).  [default: 1]")
@click.option("--fast", is_flag=True, help="Send as fast as the queue takes the frames, in their order.")
@click.option("--loop", "passes", type=click.IntRange(min=0), default=1, show_default=True,
              help="Passes over the files; 0: until --count, --duration or Ctrl-C.")
@limits_option
@batch_option
@json_option
def replay(dev: str, files: List[Path], speed: Optional[float], fast: bool, passes: int, count: Optional[int],
           duration: Optional[float], batch_size: int, as_json: bool) -> None:
    if speed and fast:
        raise click.UsageError("give --speed or --fast, not both")
    captures = [read_capture(path, str(path)) for path in files]
    with open_device(dev) as device:
        meter = Meter([device], as_json)
        with StopOnSignals() as stop:
            result = apps.replay(device, captures, apps.Limits(count, duration, stop), None if fast else speed or 1.0,
                                 passes, batch_size, tick=meter.tick)
        meter.summary(sent=result.sent)
    for stats in result.files:
        print(json.dumps(asdict(stats)) if as_json else
              f"[{stats.file}] {stats.frames} frames {stats.bytes} bytes, {stats.passes} passes: "
              f"{stats.seconds:.3f} s, scheduled {stats.schedule_seconds:.3f} s (the file spans "
              f"{stats.file_seconds:.3f} s); late by mean {stats.late_mean_us:.1f} µs, p50 {stats.late_p50_us:.1f}, "
              f"p99 {stats.late_p99_us:.1f}, max {stats.late_max_us:.1f}", flush=True)


@cli.command("ndr", help=f"Find the highest rate from TX to RX without loss (NDR), or with at most --loss percent "
                         f"(a PDR), by RFC 2544's throughput search (section 26.1): trials at one rate each, from "
                         f"--max-rate down by binary search between the highest rate that passed and the lowest "
                         f"that failed. A trial sends numbered UDP frames at its rate for --trial seconds, receives "
                         f"on RX meanwhile and --settle seconds after, and counts as received only its own frames "
                         f"(by their numbers). Each trial is a line (with --json, a JSON line; --csv writes them to "
                         f"a file), then the result for each --size. TX and RX may be one device (a loopback "
                         f"plug).\n\n{dev_help('TX', 'RX')}")
@click.argument("tx")
@click.argument("rx")
@click.option("--size", "-s", "sizes", type=click.IntRange(MIN_FRAME, MAX_FRAME), multiple=True,
              default=[MIN_FRAME], show_default=True,
              help="Frame size in bytes, without the 4-byte FCS; repeat it to search several sizes in turn (RFC "
                   "2544's are 64, 128, 256, 512, 1024, 1280 and 1518 with the FCS: --size 60 --size 124 ...).")
@click.option("--loss", "loss_pct", type=click.FloatRange(0, 100), default=0.0, show_default=True,
              help="Loss a trial may have and pass, in percent of the frames sent: 0 finds the NDR, e.g. 0.1 a PDR.")
@click.option("--trial", "trial_seconds", type=click.FloatRange(min=0, min_open=True), default=2.0,
              show_default=True, help="Seconds each trial sends; RFC 2544 asks for 60 in a real test.")
@click.option("--settle", "settle_seconds", type=click.FloatRange(min=0), default=0.5, show_default=True,
              help="Seconds to go on receiving after a trial, for the frames in flight (RFC 2544 waits 2).")
@click.option("--min-rate", "min_mpps", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Lowest rate to consider, in Mpps.")
@click.option("--max-rate", "max_mpps", type=click.FloatRange(min=0, min_open=True),
              help="Highest rate, the first tried, in Mpps.  [default: TX's line rate for the size, from its link "
                   "speed: 14.88 Mpps of 60-byte frames at 10 Gbit/s]")
@click.option("--resolution", "resolution_pct", type=click.FloatRange(0, 100, min_open=True), default=1.0,
              show_default=True, help="Stop when the highest rate that passed and the lowest that failed are less "
                                      "than this percent of --max-rate apart.")
@click.option("--max-trials", type=click.IntRange(min=1), default=20, show_default=True,
              help="Stop after this many trials a size.")
@click.option("--csv", "csv_file", type=click.File("w", lazy=False), help="Write the trials to this CSV file.")
@batch_option
@json_option
def ndr_command(tx: str, rx: str, sizes: List[int], loss_pct: float, trial_seconds: float, settle_seconds: float,
                min_mpps: float, max_mpps: Optional[float], resolution_pct: float, max_trials: int,
                csv_file: Optional[TextIO], batch_size: int, as_json: bool) -> None:
    if max_mpps is not None and min_mpps > max_mpps:
        raise click.UsageError(f"--min-rate {min_mpps:g} is above --max-rate {max_mpps:g}")
    with ExitStack() as stack:
        tx_dev = stack.enter_context(open_device(tx))
        rx_dev = tx_dev if rx == tx else stack.enter_context(open_device(rx))
        trials = csv.DictWriter(csv_file, ["trial", *(f.name for f in fields(ndr.Trial))]) if csv_file else None
        if trials:
            trials.writeheader()
        with StopOnSignals() as stop:
            for size in sizes:
                config = ndr.Config(size, loss_pct, trial_seconds, settle_seconds, min_mpps, max_mpps,
                                    resolution_pct, max_trials, batch_size)
                show = TrialLines(as_json, trials, csv_file)
                print_ndr(ndr.throughput(tx_dev, rx_dev, config, show, stop), as_json)
                if stop():
                    break


class TrialLines:
    """ndr's line a trial (a JSON line with --json), and its CSV row."""

    def __init__(self, as_json: bool, rows: Optional[csv.DictWriter], csv_file: Optional[TextIO]) -> None:
        self.as_json, self.rows, self.csv_file = as_json, rows, csv_file
        self.count = 0

    def __call__(self, trial: ndr.Trial) -> None:
        self.count += 1
        row = {"trial": self.count, **asdict(trial)}
        if self.rows and self.csv_file:
            self.rows.writerow(row)
            self.csv_file.flush()
        print(json.dumps(row) if self.as_json else
              f"[{trial.size} B] trial {self.count}: {trial.rate_mpps:.6f} Mpps (sent {trial.sent_mpps:.6f}), "
              f"sent {trial.sent}, received {trial.received}, loss {trial.loss_pct:.4f} %"
              + (f", late {trial.late}" if trial.late else "") + (f", other {trial.other}" if trial.other else "")
              + f": {'pass' if trial.passed else 'fail'}", flush=True)


def print_ndr(result: ndr.Result, as_json: bool) -> None:
    """ndr's result for one size: a line, or a JSON line with "result": true."""
    if as_json:
        print(json.dumps({"result": True, **asdict(result)}), flush=True)
        return
    what = "NDR" if result.config.loss_pct == 0 else f"PDR (loss <= {result.config.loss_pct:g} %)"
    tried = f"{len(result.trials)} trial{'' if len(result.trials) == 1 else 's'}, {result.tx} -> {result.rx}"
    if result.ndr_mpps is None:
        print(f"[{result.size} B] {what}: no rate passed ({result.config.min_mpps:g} to "
              f"{result.config.max_mpps:g} Mpps; {tried})", flush=True)
    else:
        print(f"[{result.size} B] {what} {result.ndr_mpps:.6f} Mpps, {result.l1_gbps:.3f} Gbit/s L1, "
              f"{result.l2_gbps:.3f} Gbit/s L2 ({tried})", flush=True)


@cli.command("latency", help=f"Measure the latency distribution from TX to RX with probes: UDP frames carrying a "
                             f"sequence number, their send time and a signature from byte {SEQ_OFFSET} on, sent at "
                             f"--rate and taken out of whatever RX receives (other frames are passed over). A probe's "
                             f"latency is its receive time (read once per received batch) minus its send time, one "
                             f"clock for both ports; it includes the software's time on both sides. A line a second "
                             f"(that second's probes and latencies), then the summary: probes "
                             f"sent and received, lost, reordered (after a higher number), duplicated, and the "
                             f"percentiles and maximum in microseconds. TX and RX may be one device (a loopback "
                             f"plug). The sim wires take a delay: sim:loop,delay=20us,jitter=2us. With "
                             f"--hw-timestamps (ixgbe and igb: the 82599, the 82576, QEMU's igb, the sim "
                             f"models), the NICs' IEEE 1588 clocks time each probe as it leaves TX and reaches "
                             f"RX: probes are PTP Sync frames, one in flight at a time, and the software latency "
                             f"of the same probes is shown beside.\n\n"
                             f"{dev_help('TX', 'RX')}")
@click.argument("tx")
@click.argument("rx")
@click.option("--rate", "rate_pps", type=click.IntRange(1, latency.MAX_RATE), default=latency.DEFAULT_RATE,
              show_default=True, help="Probes a second.")
@click.option("--probes", "-n", type=click.IntRange(min=1),
              help=f"Stop after sending this many probes.  [default: {latency.DEFAULT_PROBES}, unless --duration]")
@click.option("--duration", "-t", type=click.FloatRange(min=0, min_open=True), help="Stop after this many seconds.")
@click.option("--size", "-s", type=click.IntRange(latency.PROBE_FRAME_MIN, MAX_FRAME), default=latency.PROBE_FRAME,
              show_default=True, help="Probe frame size in bytes, without the 4-byte FCS.")
@click.option("--hw-timestamps", is_flag=True,
              help=f"Time the probes with the NICs' IEEE 1588 clocks (ixgbe, igb); probes of at least "
                   f"{latency.HW_PROBE_FRAME_MIN} bytes.")
@json_file_option("the result (probes, loss, reorder, duplicates, percentiles in ns)")
@plot_option("the latency histogram, with the percentiles marked")
def latency_command(tx: str, rx: str, rate_pps: int, probes: Optional[int], duration: Optional[float], size: int,
                    hw_timestamps: bool, json_file: Optional[Path], plot_file: Optional[Path]) -> None:
    if probes is not None and duration is not None:
        raise click.UsageError("give --probes or --duration, not both")
    if hw_timestamps and size < latency.HW_PROBE_FRAME_MIN:
        raise click.BadParameter(f"hardware-stamped probes need at least {latency.HW_PROBE_FRAME_MIN} bytes",
                                 param_hint="--size")
    check_json_writable(json_file)
    latency.require_hdrhistogram()

    def progress(p: latency.Progress) -> None:
        print(f"[{tx} -> {rx}] {p.seconds:.0f} s: probes sent {p.sent}, timed {p.received}; latency p50 "
              f"{us(p.p50_ns)}, p99 {us(p.p99_ns)}, max {us(p.max_ns)} µs", flush=True)

    with ExitStack() as stack:
        tx_dev = stack.enter_context(open_device(tx))
        rx_dev = tx_dev if rx == tx else stack.enter_context(open_device(rx))
        with StopOnSignals() as stop:
            result = latency.measure_latency(tx_dev, rx_dev, rate_pps, probes, duration, size, stop,
                                             hw_timestamps, progress if json_file is None else None)
    if json_file is None or not write_json(json_file, json.dumps(result.to_dict())):
        print(latency_line(result), flush=True)
    if result.sent and not result.received:
        print(f"ixypy: hint: {rx} received none of the probes {tx} sent: RX must be cabled to TX (a sim:loop "
              f"is its own RX: give the same address twice, `ixypy latency sim:loop sim:loop`; sim:pair0 -> "
              f"sim:pair1), its link up, and, without promiscuous mode, the probes go to RX's MAC address",
              file=sys.stderr, flush=True)
    if plot_file is not None:
        from . import plot

        plot.latency_histogram(result, plot_file)


def us(ns: Optional[float]) -> str:
    """ns as microseconds, one decimal; '-' for none."""
    return "-" if ns is None else f"{ns / 1000:.1f}"


def latency_line(r: latency.LatencyResult) -> str:
    """`ixypy latency`'s summary line; times in microseconds."""
    line = (f"{r.tx} -> {r.rx}: probes sent {r.sent}, received {r.received}, loss {r.lost}, reorder {r.reordered}, "
            f"dup {r.duplicates}; latency p50 {us(r.p50_ns)}, p90 {us(r.p90_ns)}, p99 {us(r.p99_ns)}, "
            f"p99.9 {us(r.p999_ns)}, max {us(r.max_ns)} µs")
    if r.software is None:
        return line
    sw = r.software
    return (f"{line} (hardware time stamps, clock offset within {us(r.clock_error_ns)} µs, unstamped "
            f"{r.unstamped}; software: p50 {us(sw.p50_ns)}, p99 {us(sw.p99_ns)}, max {us(sw.max_ns)} µs)")


def spread_flows(dev: Device, queues: int) -> None:
    """With several queues, a device with RSS (ixgbe, igb) spreads the flows
    it receives over rx queues 0..queues-1 (IntelDevice.enable_rss); without
    it every frame would reach queue 0 and the other workers idle."""
    if queues > 1 and isinstance(dev, IntelDevice):
        dev.enable_rss(queues)


def per_queue(dev: Device, kind: str, queues: int) -> Dict[str, List[int]]:
    """With several queues, the summary's extra: the packets each of dev's
    rx or tx queues moved (the driver's count)."""
    if queues == 1:
        return {}
    queue = dev.rx_queue if kind == "rx" else dev.tx_queue
    return {f"{kind}_packets_per_queue": [queue(i).packets for i in range(queues)]}


@cli.command(help=f"Forward between two devices in both directions. With --queues N, rx queue i goes to tx "
                  f"queue i, and ixgbe and igb spread received flows over the N rx queues by RSS. When nothing "
                  f"arrives on either for {IDLE_HINT_SECONDS:g} s, a hint says so once (on stderr; with --json, a "
                  f"JSON line with a \"hint\" key).\n\n{dev_help('DEV1', 'DEV2')}")
@click.argument("dev1")
@click.argument("dev2")
@limits_option
@queues_option
@batch_option
@json_option
@plot_option("each device's rx and tx rate over time, a point a second")
def fwd(dev1: str, dev2: str, count: Optional[int], duration: Optional[float], queues: int, batch_size: int,
        as_json: bool, plot_file: Optional[Path]) -> None:
    with open_device(dev1, queues, queues) as a, open_device(dev2, queues, queues) as b:
        for dev in (a, b):
            spread_flows(dev, queues)
        meter = Meter([a, b], as_json)
        idle = IdleHint([a, b], as_json)

        def tick(elapsed: float) -> None:
            meter.tick(elapsed)
            idle.check(elapsed, meter.last)

        pairs = [(a, b), (b, a)]
        with StopOnSignals() as stop:
            forwarded = apps.forward(pairs, apps.Limits(count, duration, stop), batch_size, tick=tick, queues=queues)
        copying = [f"{src.address}->{dst.address}" for src, dst in pairs if apps.copies(src, dst)]
        meter.summary(forwarded=forwarded, **per_queue(b, "tx", queues), **({"copying": copying} if copying else {}))
    plot_rates(meter, plot_file, f"ixypy fwd {dev1} {dev2}")


@cli.command(help=f"Write received frames to a pcap file.\n\n{dev_help('DEV')}")
@click.argument("dev")
@click.argument("file", type=click.File("wb", lazy=False))
@limits_option
@batch_option
@json_option
def capture(dev: str, file: BinaryIO, count: Optional[int], duration: Optional[float], batch_size: int,
            as_json: bool) -> None:
    with file as out, open_device(dev) as device:
        meter = Meter([device], as_json)
        with StopOnSignals() as stop:
            written = apps.capture(device, out, apps.Limits(count, duration, stop), batch_size, tick=meter.tick)
        meter.summary(written=written)


@cli.command()
@json_option
def devices(as_json: bool) -> None:
    """List PCI network devices and whether ixypy drives them."""
    from .drivers import supported_ids
    from .pci import list_devices

    known = supported_ids()
    rows: List[Dict[str, Any]] = []
    for dev in list_devices():
        driver_cls, model = known.get(dev.ids, (None, ""))
        rows.append({"address": dev.address, "id": f"{dev.vendor_id:04x}:{dev.device_id:04x}", "name": model,
                     "driver": dev.driver or "", "interfaces": dev.interfaces, "busy": dev.busy_interfaces(),
                     "ixypy": driver_cls.driver_name if driver_cls else ""})
    if as_json:
        print(json.dumps(rows))
        return
    from rich.console import Console

    Console().print(devices_table(rows))


def devices_table(rows: List[Dict[str, Any]]) -> "Table":
    """The rich table `ixypy devices` prints, from its JSON rows. Addresses,
    ids and kernel drivers are never cut or wrapped; on a narrow terminal
    the interfaces and the ixypy driver with its model name wrap (80 columns
    fit), and narrower still they fold, never cut."""
    from rich.table import Table

    table = Table(title="PCI network devices")
    for col in ("address", "vendor:\ndevice", "kernel\ndriver"):
        table.add_column(col, no_wrap=True)
    for col in ("interfaces", "ixypy driver: model"):
        table.add_column(col, overflow="fold")
    for r in rows:
        ifaces = ", ".join(f"{i} (in use)" if i in r["busy"] else i for i in r["interfaces"])
        ixypy = f"{r['ixypy']}: {r['name']}" if r["ixypy"] else "unsupported"
        table.add_row(r["address"], r["id"], r["driver"], ifaces, ixypy)
    return table


@cli.command()
@click.argument("address")
@click.option("--vfio", "method", flag_value="vfio", help="Bind to vfio-pci (IOMMU; works without root afterwards).")
@click.option("--uio", "method", flag_value="uio", help="Bind to uio_pci_generic (needs root to run).")
@click.option("--force", is_flag=True, help="Unbind even if the NIC's interface is up and carries a route.")
def bind(address: str, method: Optional[str], force: bool) -> None:
    """Hand a NIC to ixypy: unbind its kernel driver, bind vfio-pci or uio_pci_generic."""
    from .drivers import driver_for
    from .pci import PciDevice, choose_method

    dev = PciDevice(address).require_network()
    driver_for(*dev.ids)        # a NIC ixypy cannot drive stays with its driver
    method = choose_method(dev, method or "auto")
    before = dev.driver
    (dev.bind_vfio if method == "vfio" else dev.bind_uio)(force=force)
    print(f"{dev.address}: {before or 'no driver'} -> {dev.driver}")
    if method == "vfio":
        print(f"VFIO group file: /dev/vfio/{dev.iommu_group} (chown it to let a user run ixypy)")


@cli.command()
@click.argument("address")
def unbind(address: str) -> None:
    """Give a NIC back to its kernel driver."""
    from .pci import PciDevice
    from .pci.binding import why_no_driver

    dev = PciDevice(address).require_network()
    before = dev.driver
    after = dev.release()
    print(f"{dev.address}: {before or 'no driver'} -> {after or f'no driver ({why_no_driver(dev)})'}")


@cli.command()
@click.argument("count", type=click.IntRange(min=0))
@click.option("--mount", "mount_point", type=click.Path(file_okay=False, path_type=Path), default=Path("/mnt/huge"),
              show_default=True, help="Where to mount hugetlbfs (with 0 pages: nothing is mounted).")
def hugepages(count: int, mount_point: Path) -> None:
    """Reserve COUNT 2 MiB hugepages and mount hugetlbfs."""
    from .memory import reserve_hugepages

    reserved, mounted = reserve_hugepages(count, mount_point)
    print(f"{reserved} hugepages of 2 MiB reserved" + (f", hugetlbfs mounted at {mounted}" if mounted else ""))


if __name__ == "__main__":
    main()
