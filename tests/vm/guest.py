"""Boot a small Linux guest under QEMU (TCG) with chosen NICs and run Python in it.

The guest is the ground truth for what the host cannot give us: legacy
virtio-net and igb NICs, VFIO with an emulated IOMMU, uio_pci_generic.

How a boot works (facts in /work/shared/VM-RIG.md):
- the initramfs (built once, cached) holds busybox, the kernel modules and an
  /init that mounts the host's root read-only over 9p, a writable 9p "work"
  share at GUEST_WORK, hugetlbfs at /dev/hugepages, chroots into the host root
  and runs ``share/guest-command``, then writes its exit code to
  ``share/guest-exit`` and powers off;
- the guest command runs ``guest_agent.py`` with the host's own interpreter:
  it runs each ``job-N.json`` the host drops into the share and answers with
  ``job-N.out``/``job-N.err``/``job-N.rc``; a ``stop`` file ends it.

So one boot can run several scripts (``Guest.run``), and ``run_in_guest`` is
boot + one run + shutdown. Every wait has a timeout, and QEMU is always
reaped: on stop, on timeout, on exception, and at interpreter exit.
"""
from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

CACHE_DIR = Path(os.environ.get("IXYPY_VM_CACHE", str(Path.home() / ".cache" / "ixypy-vm")))
REPO_ROOT = Path(__file__).resolve().parents[2]
SRC_DIR = REPO_ROOT / "src"
HARNESS_DIR = Path(__file__).resolve().parent  # on the guest's PYTHONPATH too (guest-side helpers)
AGENT = HARNESS_DIR / "guest_agent.py"
GUEST_WORK = "/tmp/ixypy-work"  # where the writable work share appears inside the guest
HUGEPAGES = 64  # 2 MiB pages reserved in the guest (128 MiB of its 1024 MiB)
QEMU = "qemu-system-x86_64"
BUSYBOX = "/bin/busybox"

# Modules the guest loads, their dependencies are added from each .ko's modinfo.
GUEST_MODULES = (
    "virtio_pci", "9pnet_virtio", "9p",  # the host root and the work share
    "uio_pci_generic", "vfio_pci", "vfio_iommu_type1",  # user-space drivers
    "virtio_net", "igb", "e1000e", "pktgen",  # the kernel side of interop tests
)

VIRTIO_FIRST_SLOT = 0x10  # virtio NIC i at 0000:00:(0x10+i).0
ROOT_PORT_FIRST_SLOT = 0x18  # igb NIC j behind the root port at slot 0x18+j, on bus j+1
E1000E_SLOTS = (0x04, 0x05, 0x06, 0x07)  # e1000e NIC k at 0000:00:(0x04+k).0, on the root complex
NINEP_SLOTS = (0x08, 0x09)  # hostroot, work
# the checkout, then the interpreter's directories the guest would not see (guest_shares)
SHARE_SLOTS = (0x0A, 0x0B, 0x0C, 0x0D, 0x0E)
# the guest mounts its own file systems here, over the host root: a host path
# under one of them is hidden in the guest unless it is shared on its own
GUEST_OWN_MOUNTS = ("/tmp", "/dev", "/proc", "/sys")


def hidden_in_guest(path: Path) -> bool:
    """Whether the guest's own mounts (a tmpfs on /tmp...) hide this host path."""
    return any(Path(path).is_relative_to(m) for m in GUEST_OWN_MOUNTS)


def _link_chain(executable: str) -> List[Path]:
    """The executable and every symlink target on the way to the real file
    (a virtualenv's bin/python -> the base interpreter -> python3.x)."""
    chain, path = [], Path(os.path.abspath(executable))
    for _ in range(40):
        chain.append(path)
        if not path.is_symlink():
            break
        path = Path(os.path.abspath(path.parent / os.readlink(path)))
    return chain


def guest_shares(repo_root: Path = REPO_ROOT, executable: str = sys.executable,
                 prefixes: Sequence[str] = (sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix)
                 ) -> List[Path]:
    """Host directories the guest mounts at the same path, read-only, each
    with its own 9p share: the checkout (always), and the interpreter's
    directories that the guest's own mounts would hide, so that tests run
    from a virtualenv under /tmp (`python -m venv /tmp/v`) find its
    interpreter and site-packages in the guest: sys.prefix (the venv),
    sys.base_prefix, and the directory of each link from sys.executable to
    the real interpreter. One inside another is shared once, as the outer."""
    wanted = [Path(os.path.abspath(p)) for p in prefixes] + [p.parent for p in _link_chain(executable)]
    shares = [Path(repo_root)]
    for path in sorted({p for p in wanted if hidden_in_guest(p)}, key=lambda p: len(p.parts)):
        if not any(path.is_relative_to(s) for s in shares):
            shares.append(path)
    if len(shares) > len(SHARE_SLOTS):
        raise MissingPrerequisite(f"the guest can mount at most {len(SHARE_SLOTS)} host directories, "
                                  f"this run needs {len(shares)}: {', '.join(map(str, shares))}")
    return shares


class MissingPrerequisite(Exception):
    """QEMU, busybox, cpio or the guest kernel is not installed."""


class GuestError(AssertionError):
    """The guest did not boot, crashed, timed out or a script failed.

    An AssertionError so pytest reports it as a test failure; the message
    carries the guest's traceback and the tail of its console."""


class GuestWedged(GuestError):
    """The guest kernel stopped answering because one of its CPUs sat idle and
    was never woken again (see ``kernel_wedge``): nothing the script did."""


# The emulator's fault, as the guest kernel reports it: RCU finds a CPU that
# is idle in HLT (the NMI backtrace skips it) and whose timer never fired.
# Seen once under TCG with one-shot LAPIC timers; the guest now runs its tick
# periodic (QEMU re-arms it), see Guest.qemu_command.
_STALL = re.compile(r"rcu: INFO: \S+ detected stalls on CPUs")
_IDLE_CPU = re.compile(r"NMI backtrace for cpu (\d+) skipped: idling at (\S+)")
_NO_TIMER = re.compile(r"kthread timer wakeup didn't happen")


def kernel_wedge(console: str) -> Optional[str]:
    """One line naming the idle CPU that never woke, or None if the console
    does not show an RCU stall of an idle CPU whose timer never fired."""
    idle = _IDLE_CPU.search(console)
    if not (_STALL.search(console) and idle and _NO_TIMER.search(console)):
        return None
    return (f"the guest kernel wedged: CPU {idle.group(1)} idles in {idle.group(2)} and its "
            f"timer never fires (RCU stall), an emulator fault rather than the script's")


# --- NICs -------------------------------------------------------------------

@dataclass(frozen=True)
class Nic:
    """A NIC to give the guest.

    ``model``: "virtio" (legacy virtio-net, 1af4:1000, ``disable-modern=on``),
    "virtio-transitional" (QEMU's default ``virtio-net-pci``: 1af4:1000 with
    the legacy and the VirtIO 1.x interface), "virtio-modern" (1.x only,
    ``disable-legacy=on``, 1af4:1041), "igb" (82576, 8086:10c9) or "e1000e"
    (82574L, 8086:10d3).
    ``iommu_platform``: a 1.x virtio NIC offers VIRTIO_F_ACCESS_PLATFORM.
    ``hub``: NICs with the same hub id are wired together (a QEMU hub); None
    leaves the NIC alone on its own hub. ``udp_sink``: instead of a hub, a
    loopback UDP socket on the host receives every frame the NIC sends.
    ``pcap``: record the netdev's traffic with filter-dump.
    ``event_idx``: a virtio NIC offers VIRTIO_RING_F_EVENT_IDX (QEMU's
    default); False sets ``event_idx=off``.
    """

    model: str
    hub: Optional[int] = 0
    udp_sink: bool = False
    pcap: bool = False
    mac: Optional[str] = None
    iommu_platform: bool = False
    event_idx: bool = True

    def __post_init__(self) -> None:
        if self.model not in PCI_IDS:
            raise ValueError(f"unknown NIC model {self.model!r}: use one of {', '.join(PCI_IDS)}")
        if self.iommu_platform and self.model not in ("virtio-transitional", "virtio-modern"):
            raise ValueError("iommu_platform is for the VirtIO 1.x interface: virtio-transitional or virtio-modern")
        if not self.event_idx and self.model not in VIRTIO_MODES:
            raise ValueError("event_idx is a virtio-net option")


PCI_IDS = {"virtio": (0x1AF4, 0x1000), "virtio-transitional": (0x1AF4, 0x1000), "virtio-modern": (0x1AF4, 0x1041),
           "igb": (0x8086, 0x10C9), "e1000e": (0x8086, 0x10D3)}
SINK_BUFFER = 16 << 20      # bytes of receive buffer of a NIC's host UDP sink
SO_RCVBUFFORCE = 33         # Linux (asm-generic/socket.h): SO_RCVBUF past rmem_max, for root; Python has no name for it

# the virtio-net-pci option that makes each virtio model
VIRTIO_MODES = {"virtio": "disable-modern=on", "virtio-transitional": "", "virtio-modern": "disable-legacy=on"}


@dataclass
class Drained:
    """What Guest.drained_sink read from a NIC's sink."""

    count: int = 0
    frames: List[bytes] = field(default_factory=list)


@dataclass(frozen=True)
class GuestNic:
    """A NIC as the guest sees it: where it is and what it is."""

    index: int
    model: str
    address: str  # guest PCI address, DDDD:BB:DD.F
    mac: str
    netdev: str  # QEMU netdev id
    vendor_id: int
    device_id: int
    pcap: Optional[Path]
    sink_port: Optional[int]  # host UDP port receiving the NIC's frames


def place_nics(nics: Sequence[Nic], run_dir: Path, sink_ports: Dict[int, int]) -> List[GuestNic]:
    """Give each NIC its fixed guest address, MAC and netdev id."""
    placed = []
    virtio_i = igb_i = e1000e_i = 0
    for i, nic in enumerate(nics):
        if nic.model in VIRTIO_MODES:
            address = f"0000:00:{VIRTIO_FIRST_SLOT + virtio_i:02x}.0"
            virtio_i += 1
        elif nic.model == "e1000e":
            if e1000e_i >= len(E1000E_SLOTS):
                raise ValueError(f"at most {len(E1000E_SLOTS)} e1000e NICs in one guest")
            address = f"0000:00:{E1000E_SLOTS[e1000e_i]:02x}.0"
            e1000e_i += 1
        else:
            igb_i += 1
            address = f"0000:{igb_i:02x}:00.0"  # bus numbers follow root-port slot order
        vendor_id, device_id = PCI_IDS[nic.model]
        placed.append(GuestNic(
            index=i, model=nic.model, address=address,
            mac=nic.mac or f"52:54:00:12:34:{0x50 + i:02x}",
            netdev=f"n{i}", vendor_id=vendor_id, device_id=device_id,
            pcap=run_dir / f"n{i}.pcap" if nic.pcap else None,
            sink_port=sink_ports.get(i),
        ))
    return placed


def nic_qemu_args(nic: Nic, placed: GuestNic) -> List[str]:
    """QEMU arguments for one NIC: its netdev, optional pcap, the device."""
    if nic.udp_sink:
        netdev = f"socket,id={placed.netdev},udp=127.0.0.1:{placed.sink_port},localaddr=127.0.0.1:0"
    else:
        hub = nic.hub if nic.hub is not None else 1000 + placed.index
        netdev = f"hubport,id={placed.netdev},hubid={hub}"
    args = ["-netdev", netdev]
    if placed.pcap:
        args += ["-object", f"filter-dump,id=dump{placed.index},netdev={placed.netdev},file={placed.pcap}"]
    common = f"netdev={placed.netdev},mac={placed.mac},romfile="
    if nic.model in VIRTIO_MODES:
        slot = int(placed.address.split(":")[2].split(".")[0], 16)
        options = [VIRTIO_MODES[nic.model], "iommu_platform=on" if nic.iommu_platform else "",
                   "" if nic.event_idx else "event_idx=off"]
        args += ["-device", ",".join(["virtio-net-pci", common, *filter(None, options), f"addr={slot:#x}"])]
    elif nic.model == "e1000e":
        slot = int(placed.address.split(":")[2].split(".")[0], 16)
        args += ["-device", f"e1000e,{common},addr={slot:#x}"]
    else:
        port = f"rp{placed.index}"
        bus = int(placed.address.split(":")[1], 16)
        args += ["-device", f"pcie-root-port,id={port},chassis={bus},addr={ROOT_PORT_FIRST_SLOT + bus - 1:#x}",
                 "-device", f"igb,{common},bus={port}"]
    return args


# --- prerequisites and the initramfs ----------------------------------------

@dataclass(frozen=True)
class GuestImage:
    kernel: Path
    initramfs: Path


def find_kernel() -> Path:
    kernels = sorted((CACHE_DIR / "kernel" / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise MissingPrerequisite(f"no guest kernel in {CACHE_DIR}/kernel")
    return kernels[-1]


def check_host_tools() -> None:
    for tool in (QEMU, "cpio"):
        if shutil.which(tool) is None:
            raise MissingPrerequisite(f"{tool} is not installed")
    if not Path(BUSYBOX).exists():
        raise MissingPrerequisite(f"{BUSYBOX} (busybox-static) is not installed")


def module_files(modules_dir: Path) -> Dict[str, Path]:
    """Module name (underscores) -> .ko file."""
    return {p.stem.replace("-", "_"): p for p in modules_dir.rglob("*.ko")}


def module_depends(ko: Path) -> List[str]:
    """The ``depends=`` list from a module's .modinfo (no modinfo tool needed)."""
    m = re.search(rb"\x00depends=([^\x00]*)\x00", ko.read_bytes())
    if not m or not m.group(1):
        return []
    return [d.replace("-", "_") for d in m.group(1).decode().split(",")]


def modules_in_load_order(wanted: Sequence[str], files: Dict[str, Path]) -> List[str]:
    """``wanted`` plus their dependencies, each after what it depends on.
    A name with no .ko file is built into the kernel and skipped."""
    order: List[str] = []

    def visit(name: str) -> None:
        if name in order or name not in files:
            return
        for dep in module_depends(files[name]):
            visit(dep)
        order.append(name)

    for name in wanted:
        if name not in files:
            raise MissingPrerequisite(f"guest kernel has no module {name}")
        visit(name)
    return order


INIT_SCRIPT = f"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /lib/modules/load-order); do
    insmod /lib/modules/$m.ko || echo "ixypy-init: insmod $m failed"
done
R=/newroot
mkdir -p $R
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000 hostroot $R || echo "ixypy-init: no host root"
mount -t proc proc $R/proc
mount -t sysfs sys $R/sys
mount -t devtmpfs dev $R/dev
mount -t tmpfs tmp $R/tmp
mkdir -p $R/dev/hugepages $R/dev/shm {GUEST_WORK}
mount -t tmpfs shm $R/dev/shm
mount -t hugetlbfs hugetlbfs $R/dev/hugepages
mkdir -p $R{GUEST_WORK}
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 work $R{GUEST_WORK} || echo "ixypy-init: no work share"
echo {HUGEPAGES} > /proc/sys/vm/nr_hugepages
chroot $R /bin/sh {GUEST_WORK}/guest-command
echo $? > $R{GUEST_WORK}/guest-exit
sync
poweroff -f
"""


def build_initramfs(kernel: Path) -> Path:
    """The cached initramfs for this kernel, module list and /init; built on first use."""
    version = kernel.name[len("vmlinuz-"):]
    files = module_files(CACHE_DIR / "kernel" / "lib" / "modules" / version)
    order = modules_in_load_order(GUEST_MODULES, files)
    key = hashlib.sha256("\n".join([str(kernel), INIT_SCRIPT, *order]).encode()).hexdigest()[:16]
    image = CACHE_DIR / f"initramfs-{key}.cpio"
    if image.exists():
        return image
    with tempfile.TemporaryDirectory(dir=CACHE_DIR) as tmp:
        root = Path(tmp) / "root"
        for d in ("bin", "dev", "proc", "sys", "lib/modules"):
            (root / d).mkdir(parents=True)
        shutil.copy2(BUSYBOX, root / "bin" / "busybox")
        for name in order:
            shutil.copy2(files[name], root / "lib" / "modules" / f"{name}.ko")
        (root / "lib" / "modules" / "load-order").write_text("\n".join(order) + "\n")
        (root / "init").write_text(INIT_SCRIPT)
        (root / "init").chmod(0o755)
        listing = subprocess.run(["find", "."], cwd=root, check=True, capture_output=True).stdout
        part = Path(tmp) / "initramfs.cpio"
        with open(part, "wb") as out:
            subprocess.run(["cpio", "--quiet", "-o", "-H", "newc"], cwd=root, input=listing,
                           stdout=out, check=True)
        os.replace(part, image)  # atomic: concurrent builders do not see half a file
    return image


def prepare_image() -> GuestImage:
    """Check the prerequisites and return the kernel and initramfs; raises MissingPrerequisite."""
    check_host_tools()
    kernel = find_kernel()
    return GuestImage(kernel=kernel, initramfs=build_initramfs(kernel))


def guest_script(body: str, **constants: object) -> str:
    """Python source for the guest: ``NAME = repr(value)`` lines, then ``body`` dedented."""
    return "".join(f"{name} = {value!r}\n" for name, value in constants.items()) + textwrap.dedent(body)


# --- running the guest ------------------------------------------------------

@dataclass
class GuestResult:
    """What one script did in the guest."""

    exit_code: int
    stdout: str
    stderr: str
    console: str
    pcaps: Dict[str, Path]
    seconds: float  # script start to result, as seen by the host
    timed_out: bool = False

    def check(self) -> "GuestResult":
        """Raise GuestError (a test failure) with the guest traceback if the script failed."""
        if self.exit_code != 0:
            what = "timed out" if self.timed_out else f"exited with {self.exit_code}"
            raise GuestError(failure_message(f"guest script {what}", self.stdout, self.stderr, self.console))
        return self


def tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def failure_message(what: str, stdout: str, stderr: str, console: str) -> str:
    return (f"{what}\n--- guest stderr ---\n{stderr.rstrip()}\n--- guest stdout (tail) ---\n"
            f"{tail(stdout)}\n--- guest console (tail) ---\n{tail(console)}")


_live_guests: "set[Guest]" = set()


def kill_all_guests() -> None:
    """Kill and reap every QEMU still running (session end, interpreter exit)."""
    for guest in list(_live_guests):
        guest.kill()


atexit.register(kill_all_guests)


@dataclass(eq=False)
class Guest:
    """One QEMU guest with the given NICs; ``start``, ``run`` scripts, ``stop``.

    Use as a context manager. ``run_dir`` (host) holds the work share, the
    console log and the pcaps."""

    nics: Sequence[Nic]
    run_dir: Path
    image: GuestImage
    boot_timeout: float = 90.0
    memory_mb: int = 1024
    placed: List[GuestNic] = field(init=False, default_factory=list)
    boot_seconds: float = field(init=False, default=0.0)
    _proc: Optional["subprocess.Popen[bytes]"] = field(init=False, default=None)
    _sinks: List[socket.socket] = field(init=False, default_factory=list)
    _jobs: int = field(init=False, default=0)

    @property
    def share(self) -> Path:
        return self.run_dir / "share"

    @property
    def console_log(self) -> Path:
        return self.run_dir / "console.log"

    def console(self) -> str:
        try:
            return self.console_log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def nic(self, index: int) -> GuestNic:
        return self.placed[index]

    def sink(self, index: int) -> socket.socket:
        """The host socket receiving NIC ``index``'s frames (a NIC with udp_sink=True)."""
        port = self.placed[index].sink_port
        return next(s for s in self._sinks if s.getsockname()[1] == port)

    @contextlib.contextmanager
    def drained_sink(self, index: int, keep: bool = False) -> Iterator["Drained"]:
        """While the block runs, a host thread reads NIC ``index``'s sink
        (so that it does not fill up): yields the count of frames so far,
        and the frames themselves with ``keep``."""
        sink, stop, drained = self.sink(index), threading.Event(), Drained()
        sink.settimeout(0.2)

        def drain() -> None:
            while not stop.is_set():
                try:
                    frame = sink.recv(2048)
                except socket.timeout:
                    continue
                drained.count += 1
                if keep:
                    drained.frames.append(frame)
        drainer = threading.Thread(target=drain, daemon=True)
        drainer.start()
        try:
            yield drained
        finally:
            stop.set()
            drainer.join(5)

    def __enter__(self) -> "Guest":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def qemu_command(self) -> List[str]:
        cmd = [
            QEMU, "-machine", "q35,kernel-irqchip=split", "-cpu", "max",
            "-m", str(self.memory_mb), "-smp", "2", "-nographic", "-no-reboot",
            "-vga", "none", "-nic", "none",
            "-kernel", str(self.image.kernel), "-initrd", str(self.image.initramfs),
            # iommu=pt: devices the kernel drives (and uio_pci_generic's) DMA to
            # physical addresses untranslated; vfio-pci still gets its own domain.
            # nohz=off highres=off: a periodic tick, which QEMU re-arms by itself;
            # with one-shot ticks a CPU whose one timer interrupt went missing
            # idled forever (CI, 2026-11-30; see kernel_wedge)
            "-append", "console=ttyS0 loglevel=5 panic=-1 intel_iommu=on iommu=pt nohz=off highres=off",
            "-device", "intel-iommu,intremap=on,caching-mode=on",
            "-fsdev", "local,id=fs0,path=/,security_model=none,readonly=on,multidevs=remap",
            "-device", f"virtio-9p-pci,fsdev=fs0,mount_tag=hostroot,addr={NINEP_SLOTS[0]:#x}",
            "-fsdev", f"local,id=fs1,path={self.share},security_model=none",
            "-device", f"virtio-9p-pci,fsdev=fs1,mount_tag=work,addr={NINEP_SLOTS[1]:#x}",
        ]
        # the checkout itself, and a virtualenv's interpreter: they may live where
        # the guest's own mounts hide the host root (under /tmp, which the guest
        # mounts a tmpfs over)
        for i, path in enumerate(guest_shares()):
            cmd += ["-fsdev", f"local,id=fs{2 + i},path={path},security_model=none,readonly=on",
                    "-device", f"virtio-9p-pci,fsdev=fs{2 + i},mount_tag=share{i},addr={SHARE_SLOTS[i]:#x}"]
        for nic, placed in zip(self.nics, self.placed):
            cmd += nic_qemu_args(nic, placed)
        return cmd

    def guest_command(self) -> str:
        """The shell script /init runs in the chroot: the agent under the host's Python."""
        nics = json.dumps([{"address": n.address, "model": n.model, "mac": n.mac} for n in self.placed])
        mounts = "".join(f"mkdir -p {path} && mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000 "
                         f"share{i} {path}\n" for i, path in enumerate(guest_shares()))
        return ("export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp PYTHONDONTWRITEBYTECODE=1\n"
                + mounts +
                f"[ -x {sys.executable} ] || {{ echo 'ixypy-guest: the host interpreter {sys.executable} is not "
                f"visible in the guest (shared: {' '.join(map(str, guest_shares()))})'; exit 127; }}\n"
                f"export PYTHONPATH={SRC_DIR}:{HARNESS_DIR} IXYPY_TEST_NICS='{nics}'\n"
                f"cd {GUEST_WORK}\n"
                f"exec {sys.executable} -u {AGENT} {GUEST_WORK}\n")

    def open_sinks(self) -> Dict[int, int]:
        ports = {}
        for i, nic in enumerate(self.nics):
            if nic.udp_sink:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                # room for a burst while the draining thread waits for a core (root may pass rmem_max)
                s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE if os.geteuid() == 0 else socket.SO_RCVBUF,
                             SINK_BUFFER)
                s.bind(("127.0.0.1", 0))
                self._sinks.append(s)
                ports[i] = s.getsockname()[1]
        return ports

    def start(self) -> None:
        """Boot and wait until the agent in the guest is ready (or fail with the console)."""
        self.share.mkdir(parents=True, exist_ok=True)
        self.placed = place_nics(self.nics, self.run_dir, self.open_sinks())
        (self.share / "guest-command").write_text(self.guest_command())
        t0 = time.monotonic()
        with open(self.console_log, "wb") as console:
            self._proc = subprocess.Popen(self.qemu_command(), stdin=subprocess.DEVNULL,
                                          stdout=console, stderr=subprocess.STDOUT)
        _live_guests.add(self)
        try:
            self.wait_for(self.share / "ready", self.boot_timeout, "boot")
        except BaseException:
            self.kill()
            raise
        self.boot_seconds = time.monotonic() - t0

    def wait_for(self, path: Path, timeout: float, what: str) -> None:
        """Wait for ``path`` to appear while QEMU lives; GuestError on timeout or exit."""
        deadline = time.monotonic() + timeout
        while not path.exists():
            assert self._proc is not None
            if self._proc.poll() is not None:
                said = [line.strip() for line in self.console().splitlines() if line.startswith("ixypy-guest:")]
                raise GuestError(failure_message(
                    f"QEMU exited with {self._proc.returncode} during {what}" + "".join(f"; {x}" for x in said),
                    "", "", self.console()))
            if time.monotonic() > deadline:
                self.kill()
                console = self.console()
                wedge = kernel_wedge(console)
                error = GuestWedged if wedge else GuestError
                raise error(failure_message(
                    f"guest {what} timed out after {timeout:.0f} s" + (f": {wedge}" if wedge else ""),
                    "", "", console))
            time.sleep(0.05)

    def run(self, script: str, timeout: float = 60.0, check: bool = True) -> GuestResult:
        """Run Python source in the guest (as root, host interpreter, src on PYTHONPATH).

        ``timeout`` bounds the script: the agent kills it and reports; if the
        guest itself stops answering, the host kills QEMU 30 s later."""
        if self._proc is None or self._proc.poll() is not None:
            raise GuestError(failure_message("the guest is not running", "", "", self.console()))
        n = self._jobs
        self._jobs += 1
        job = self.share / f"job-{n}"
        part = self.share / f".job-{n}.part"
        part.write_text(json.dumps({"script": script, "timeout": timeout}))
        os.replace(part, job.with_suffix(".json"))
        t0 = time.monotonic()
        self.wait_for(job.with_suffix(".rc"), timeout + 30.0, f"script job-{n}")
        seconds = time.monotonic() - t0
        rc = json.loads(job.with_suffix(".rc").read_text())
        result = GuestResult(
            exit_code=rc["exit_code"], timed_out=rc["timed_out"], seconds=seconds,
            stdout=job.with_suffix(".out").read_text(errors="replace"),
            stderr=job.with_suffix(".err").read_text(errors="replace"),
            console=self.console(),
            pcaps={p.netdev: p.pcap for p in self.placed if p.pcap},
        )
        return result.check() if check else result

    def stop(self, timeout: float = 20.0) -> Optional[int]:
        """Ask the guest to power off; kill it if it does not within ``timeout``.
        Returns the guest command's exit code, or None if it never wrote one."""
        if self._proc is not None and self._proc.poll() is None:
            (self.share / "stop").touch()
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        try:
            return int((self.share / "guest-exit").read_text())
        except (FileNotFoundError, ValueError):
            return None

    def kill(self) -> None:
        """Kill and reap QEMU (idempotent) and close the sinks."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
        for s in self._sinks:
            s.close()
        self._sinks.clear()
        _live_guests.discard(self)


class SharedGuest:
    """The guest a test module's tests share (fixture ``guest``).

    A script whose guest wedged (``GuestWedged``: a CPU idle and never woken,
    the emulator's fault) runs once more on a freshly booted guest, and
    ``wedges`` keeps what happened for the run's summary (``rerun_if_wedged``
    False: it fails). Every other failure (the script's, a crash, a timeout
    with no idle CPU stuck) fails at once."""

    def __init__(self, nics: Sequence[Nic], run_dir: Path, image: GuestImage) -> None:
        self.nics = list(nics)
        self.run_dir_first = run_dir
        self.image = image
        self.wedges: List[str] = []
        self.current = Guest(self.nics, run_dir, image)

    def __getattr__(self, name: str) -> object:
        return getattr(self.current, name)

    def __enter__(self) -> "SharedGuest":
        self.current.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.current.stop()

    def run(self, script: str, timeout: float = 60.0, check: bool = True,
            rerun_if_wedged: bool = True) -> GuestResult:
        try:
            return self.current.run(script, timeout=timeout, check=check)
        except GuestWedged as wedged:
            if not rerun_if_wedged:
                raise
            self.wedges.append(str(wedged).splitlines()[0])
            self.current.kill()
            self.current = Guest(self.nics, self.run_dir_first / f"reboot-{len(self.wedges)}", self.image)
            self.current.start()
            return self.current.run(script, timeout=timeout, check=check)
