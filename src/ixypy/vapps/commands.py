"""The ixypy subcommands of the vector apps: firewall and nat, each
forwarding between two devices in both directions."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click


def _limits(f):
    f = click.option("--count", "-n", type=click.IntRange(min=1), help="Stop after sending this many packets.")(f)
    f = click.option("--batch", "batch_size", type=click.IntRange(1, 512), default=256, show_default=True,
                     help="Packets per rx/tx call.")(f)
    return f


def _run(dev1: str, dev2: str, steps, batch_size: int, count: Optional[int]) -> int:
    from .. import open as open_device
    from ..cli import StopOnSignals
    from .loop import forward

    with open_device(dev1) as a, open_device(dev2) as b, StopOnSignals() as stop:
        pairs = [(a.rx_queue(0), b.tx_queue(0), steps[0]), (b.rx_queue(0), a.tx_queue(0), steps[1])]
        return forward(pairs, batch_size, stop, count)


@click.command()
@click.argument("dev1")
@click.argument("dev2")
@click.option("--rules", "rules_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Rules file: 'accept|drop proto src sport dst dport' per line, 'default accept|drop'.")
@_limits
def firewall(dev1: str, dev2: str, rules_file: Path, batch_size: int, count: Optional[int]) -> None:
    """Forward between two devices, dropping what the 5-tuple rules refuse."""
    from .firewall import Firewall

    try:
        fws = [Firewall(rules_file, batch_size), Firewall(rules_file, batch_size)]
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--rules")
    sent = _run(dev1, dev2, fws, batch_size, count)
    click.echo(f"forwarded {sent}; passed {fws[0].passed + fws[1].passed}, dropped {fws[0].dropped + fws[1].dropped}; "
               f"per rule (last: default) {(fws[0].counters + fws[1].counters).tolist()}")


@click.command()
@click.argument("inside")
@click.argument("outside")
@click.option("--inside-prefix", required=True, help="e.g. 10.0.0.0/8")
@click.option("--outside-prefix", required=True, help="e.g. 198.51.100.0/24... of the same length")
@click.option("--port", "ports", multiple=True, help="FROM:TO destination port map, outbound (repeatable).")
@_limits
def nat(inside: str, outside: str, inside_prefix: str, outside_prefix: str, ports, batch_size: int,
        count: Optional[int]) -> None:
    """1:1 prefix NAT and port mapping between an inside and an outside device."""
    from .nat import Nat

    try:
        pmap = {int(a): int(b) for a, b in (p.split(":") for p in ports)}
        steps = [Nat(inside_prefix, outside_prefix, pmap, batch_size, outbound=True),
                 Nat(inside_prefix, outside_prefix, pmap, batch_size, outbound=False)]
    except ValueError as err:
        raise click.UsageError(str(err))
    sent = _run(inside, outside, steps, batch_size, count)
    click.echo(f"forwarded {sent}; rewritten out {steps[0].rewritten}, in {steps[1].rewritten}")


COMMANDS = [firewall, nat]
