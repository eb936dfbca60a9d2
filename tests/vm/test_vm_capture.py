"""The rig's traffic taps: a NIC's frames reach its loopback UDP sink on the
host and its filter-dump pcap. The guest's own virtio_net driver sends."""
import pytest

from .guest import Nic, guest_script

pytestmark = pytest.mark.vm

GUEST_NICS = [Nic("virtio", udp_sink=True, pcap=True)]
MARKER = b"ixypy-vm-capture-marker"


def test_frame_reaches_udp_sink_and_pcap(guest):
    nic = guest.nic(0)
    guest.run(guest_script("""
        import glob, os, socket, subprocess
        (ifname,) = [os.path.basename(p) for p in glob.glob(f"/sys/bus/pci/devices/{ADDR}/virtio*/net/*")]
        subprocess.run(["ip", "link", "set", "dev", ifname, "up"], check=True)
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        s.bind((ifname, 0))
        frame = b"\\xff" * 6 + bytes.fromhex(MAC.replace(":", "")) + b"\\x88\\xb5" + MARKER
        s.send(frame.ljust(60, b"\\0"))
    """, ADDR=nic.address, MAC=nic.mac, MARKER=MARKER))
    sink = guest.sink(0)
    sink.settimeout(10)
    frames = []
    while not any(MARKER in f for f in frames):  # the kernel may send its own frames first
        frames.append(sink.recv(2048))
    assert nic.pcap is not None and MARKER in nic.pcap.read_bytes()
