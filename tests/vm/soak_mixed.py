"""Soak: the mixed igb + virtio VFIO scenario of test_vm_igb.py, again and
again in one guest, each run a new process (open over UIO and VFIO, forward,
close, exit). Issue 13 item 7: a guest Python once hung in D state here.

Not collected by the suite (the name does not start with test_); run it by
path, under load if you want the load:
    yes > /dev/null & yes > /dev/null &
    SOAK_RUNS=20 python -m pytest tests/vm/soak_mixed.py -v
A run that times out fails with the guest agent's diagnostics (the script's
tasks' kernel stacks and the kernel's blocked tasks, tests/vm/guest_agent.py),
or, if the guest kernel wedged (an idle CPU whose timer never fired, see
guest.kernel_wedge), with GuestWedged; unlike the suite, the soak does not
boot a new guest and run again.
"""
import json
import os

import pytest

from .guest import guest_script
from .test_vm_igb import GUEST_NICS, NAMES, SCENARIOS  # noqa: F401 (GUEST_NICS: the module guest's NICs)

pytestmark = pytest.mark.vm

RUN = """
import json, time
import ixypy
from ixypy.pci import PciDevice
import igb_guest
t = time.perf_counter()
namespace = dict(globals())
exec(compile(CODE, "<scenario mixed>", "exec"), namespace)
out = namespace["out"]
out["seconds"] = round(time.perf_counter() - t, 2)
igb_guest.emit(out)
"""


@pytest.mark.parametrize("run", range(int(os.environ.get("SOAK_RUNS", "20"))))
def test_mixed_scenario_again(guest, run):
    macs = {f"{name}_MAC": guest.nic(i).mac for i, name in enumerate(NAMES)}
    addrs = {name: guest.nic(i).address for i, name in enumerate(NAMES)}
    # no second chance on a new guest: a wedge is what this soak looks for
    res = guest.run(guest_script(RUN, CODE=SCENARIOS["mixed"], **addrs, **macs), timeout=240, rerun_if_wedged=False)
    out = json.loads(res.stdout.strip().splitlines()[-1])
    fw, back = out["igb_to_virtio"], out["virtio_to_igb"]
    assert (fw["forwarded"], fw["received"], fw["out_of_order"]) == (3000, 3000, 0)
    assert (back["sent"], back["received"], back["out_of_order"]) == (3000, 3000, 0)
    print(f"run {run}: {out['seconds']} s in the scenario, {res.seconds} s for the script")
