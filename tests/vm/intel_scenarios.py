"""Host side of the Intel guest tests (test_vm_igb.py, test_vm_e1000e.py,
test_vm_igbvf.py): one guest script per module runs every scenario.

Python in the TCG guest needs seconds to start and to import what the
scenarios use, so a module collects its scenarios (named guest code, each
setting `out`) and runs them all in one script, each isolated
(igb_guest.run_scenarios: an exception is recorded and the next scenario
runs); each test asserts on its scenario's result through outcome().
"""
from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Dict, Optional

from .conftest import _timings
from .guest import guest_script

# the head of every module's guest script: what the scenarios may use unimported
PROLOGUE = """
import gc, json, time, traceback
import ixypy
from ixypy.pci import PciDevice
import igb_guest
"""


class Scenarios(Dict[str, str]):
    """Scenario name -> guest code, in the order they run."""

    def add(self, name: str, code: str) -> None:
        """Guest code run with the module's constants defined; it sets `out`."""
        self[name] = textwrap.dedent(code)


def nic_constants(guest, names: str) -> Dict[str, str]:
    """A, B, ... (the NICs' PCI addresses) and A_MAC, B_MAC, ..., in the order of GUEST_NICS."""
    constants = {f"{name}_MAC": guest.nic(i).mac for i, name in enumerate(names)}
    constants.update({name: guest.nic(i).address for i, name in enumerate(names)})
    return constants


def run_script(guest, module: str, runner: str, scenarios: Scenarios, timeout: float = 900,
               **constants: object) -> dict:
    """PROLOGUE + runner in the guest (with SCENARIOS and constants defined):
    the results it emitted, also written to results.json in the guest's run
    directory. The timeout is for a hang (the agent then reports the
    script's kernel stacks): igb's whole script took 424 s once with both
    host cores busy."""
    res = guest.run(guest_script(PROLOGUE + textwrap.dedent(runner), SCENARIOS=dict(scenarios), **constants),
                    timeout=timeout)
    _timings.append((module, "script (all)", res.seconds))
    out = json.loads(res.stdout.strip().splitlines()[-1])
    Path(guest.run_dir, "results.json").write_text(json.dumps(out, indent=1))
    return out


def outcome(results: dict, name: str, setup: Optional[str] = None) -> dict:
    """Scenario name's result; a test failure with the guest's traceback if
    it raised (or if the script's set-up, the result named setup, did)."""
    if setup is not None:
        assert "error" not in results[setup], f"set-up failed in the guest:\n{results[setup]['error']}"
    out = results[name]
    assert "error" not in out, f"scenario {name} failed in the guest:\n{out['error']}"
    return out

