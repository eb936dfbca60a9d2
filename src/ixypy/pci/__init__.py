"""PCI devices through sysfs: find NICs, read their ids, bind and unbind
drivers (uio_pci_generic, vfio-pci), config space and BARs.

One module per job:

- :mod:`.address`: PCI addresses (``DDDD:BB:DD.F``);
- :mod:`.sysfs`: reading and writing sysfs attributes, loading driver modules;
- :mod:`.config`: config space access, bus mastering, the MSI-X capability;
- :mod:`.bars`: BAR descriptions and mapped memory BARs;
- :mod:`.device`: :class:`PciDevice`, one function as sysfs shows it;
- :mod:`.binding`: the bind/unbind/release state machine, UIO or VFIO;
- :mod:`.listing`: the network devices of the machine.

The names below are the package's public API; the same convention (config
space, ``map_bar``, ``ioport``) holds for :class:`ixypy.vfio.VfioDevice`.
What a test replaces (``sysfs.write_sysfs``, ``sysfs.load_module``,
``binding.BIND_TIMEOUT``) is reached through its module.
"""
from .address import PciAddress, normalize_address
from .bars import IORESOURCE_IO, IORESOURCE_MEM, BarInfo, MappedBar, map_fd
from .binding import METHODS, UIO_DRIVER, VFIO_DRIVER, choose_method
from .config import (MSIX_ENABLE, PCI_CAP_ID_MSIX, PCI_CAP_PTR, PCI_CLASS_NETWORK, PCI_COMMAND,
                     PCI_COMMAND_MASTER, PCI_STATUS, PCI_STATUS_CAP_LIST, capabilities, msix_capability, msix_enabled,
                     pread_exact, pwrite_exact, set_bus_master)
from .device import PciDevice
from .listing import list_devices
from .sysfs import PROC, SYSFS

__all__ = [
    "PciAddress", "normalize_address",
    "IORESOURCE_IO", "IORESOURCE_MEM", "BarInfo", "MappedBar", "map_fd",
    "METHODS", "UIO_DRIVER", "VFIO_DRIVER", "choose_method",
    "MSIX_ENABLE", "PCI_CAP_ID_MSIX", "PCI_CAP_PTR", "PCI_CLASS_NETWORK", "PCI_COMMAND", "PCI_COMMAND_MASTER",
    "PCI_STATUS", "PCI_STATUS_CAP_LIST", "capabilities", "msix_capability", "msix_enabled", "pread_exact", "pwrite_exact", "set_bus_master",
    "PciDevice", "list_devices", "PROC", "SYSFS",
]
