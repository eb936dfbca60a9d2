"""The guest sees the interpreter the tests run with, wherever it lives: a
virtualenv under /tmp (which the guest mounts a tmpfs over) is shared with
the guest like the checkout. Host-only checks of guest.py's shares and
commands; test_vm_harness.py boots a guest from whatever interpreter runs the
suite."""
from __future__ import annotations

import os
import sys
import venv
from pathlib import Path

import pytest

from . import guest
from .guest import guest_shares, hidden_in_guest


def test_a_path_under_the_guests_own_mounts_is_hidden():
    assert hidden_in_guest(Path("/tmp/v")) and hidden_in_guest(Path("/tmp"))
    assert not hidden_in_guest(Path("/tmpfoo")) and not hidden_in_guest(Path("/usr/lib/python3"))


def test_a_venv_under_tmp_is_shared(tmp_path: Path):
    """A real venv under /tmp whose python links to this interpreter: its
    directory is shared; the base interpreter is shared only if hidden too."""
    if not hidden_in_guest(tmp_path):
        pytest.skip(f"the temporary directory {tmp_path} is not under {guest.GUEST_OWN_MOUNTS}")
    env = tmp_path / "v"
    venv.EnvBuilder(symlinks=True, with_pip=False).create(env)
    exe = env / "bin" / "python"
    base = Path(sys.base_prefix)
    shares = guest_shares(Path("/work/checkout"), str(exe), (str(env), str(env), str(base), str(base)))
    assert shares[0] == Path("/work/checkout")
    assert env in shares
    real = Path(os.path.realpath(exe))
    assert all(not hidden_in_guest(p.parent) or any(p.parent.is_relative_to(s) for s in shares)
               for p in (exe, real))
    assert (base in shares) == hidden_in_guest(base)


def test_nested_and_visible_directories_are_not_shared_twice():
    shares = guest_shares(Path("/tmp/clone"), "/usr/bin/python3",
                          ("/tmp/clone/.venv", "/tmp/clone/.venv", "/usr", "/usr"))
    assert shares == [Path("/tmp/clone")]                   # the venv inside the checkout, /usr visible
    shares = guest_shares(Path("/work/x"), "/usr/bin/python3", ("/tmp/a/v", "/tmp/a/v", "/tmp/a", "/tmp/a"))
    assert shares == [Path("/work/x"), Path("/tmp/a")]


def test_the_guest_mounts_every_share_and_checks_the_interpreter(tmp_path: Path, monkeypatch):
    """qemu_command exports each share, guest_command mounts it at its host
    path before it runs sys.executable, and says so when it cannot."""
    monkeypatch.setattr(sys, "executable", "/tmp/v/bin/python")
    monkeypatch.setattr(sys, "prefix", "/tmp/v")
    monkeypatch.setattr(sys, "exec_prefix", "/tmp/v")
    monkeypatch.setattr(guest, "guest_shares", lambda: [guest.REPO_ROOT, Path("/tmp/v")])
    g = guest.Guest([], tmp_path, guest.GuestImage(Path("/vmlinuz"), Path("/initrd")))
    qemu = " ".join(g.qemu_command())
    assert f"path={guest.REPO_ROOT},security_model=none,readonly=on" in qemu
    assert "local,id=fs3,path=/tmp/v,security_model=none,readonly=on" in qemu
    assert "virtio-9p-pci,fsdev=fs3,mount_tag=share1" in qemu
    script = g.guest_command()
    mount = "mkdir -p /tmp/v && mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000 share1 /tmp/v\n"
    assert mount in script
    assert script.index(mount) < script.index("[ -x /tmp/v/bin/python ]") < script.index("exec /tmp/v/bin/python")
    assert "ixypy-guest: the host interpreter /tmp/v/bin/python is not visible in the guest" in script
