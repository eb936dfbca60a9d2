"""Build the compiled parts of ixypy: the Cython fast path and the device models
(82599, legacy virtio-net).

Flags: -O3, generic x86-64 code (no -march=native), so one build runs on the host
and inside a TCG guest. IXYPY_CFLAGS adds flags (e.g. "-march=native" for a
local benchmark build).
"""
import os
import shlex

from Cython.Build import cythonize
from setuptools import Extension, setup

CFLAGS = ["-O3", "-std=gnu11", "-pthread", "-Wall", "-Wno-unused-function"]
CFLAGS += shlex.split(os.environ.get("IXYPY_CFLAGS", ""))

# The fast path: one extension module per concern, each with a .pxd that
# declares its classes, so other Cython modules cimport them.
FASTPATH_HEADERS = {
    "regs": ["ixy_regs.h", "ixy_portio.h"],
    "mempool": ["ixy_mempool.h"],
    "batch": ["ixy_mempool.h"],
    "queue": ["ixy_mempool.h", "ixy_poll_hook.h"],
    "intel": ["ixy_desc.h", "ixy_regs.h", "ixy_mempool.h"],
    "virtio": ["ixy_virtio.h", "ixy_portio.h", "ixy_regs.h", "ixy_mempool.h"],
    "bench": ["ixy_measure.h", "ixy_poll_hook.h", "ixy_regs.h", "ixy_mempool.h"],
    "ops": ["ixy_pkt.h", "ixy_mempool.h"],
    "loops": ["ixy_stop.h", "ixy_hist.h", "ixy_mempool.h", "ixy_poll_hook.h"],
    "classify": ["ixy_classify.h", "ixy_pkt.h", "ixy_mempool.h"],
    "nat": ["ixy_nat.h", "ixy_pkt.h", "ixy_mempool.h"],
    "flowtable": ["ixy_flowtable.h", "ixy_pkt.h"],
}

# the Intel model (82599, 82576): its shared core, then one file per register map
INTEL_MODEL = ["csrc/sim/intel_model.c", "csrc/sim/intel_engines.c", "csrc/sim/intel_queues.c",
               "csrc/sim/intel_msix.c", "csrc/sim/intel_regs.c", "csrc/sim/intel_wire.c", "csrc/sim/intel_faults.c",
               "csrc/sim/intel_rss.c", "csrc/sim/intel_1588.c", "csrc/sim/intel_82599.c", "csrc/sim/intel_82576.c"]

extensions = [
    Extension(
        f"ixypy.fastpath.{name}",
        sources=[f"src/ixypy/fastpath/{name}.pyx"],
        include_dirs=["csrc"],
        depends=[f"csrc/{h}" for h in headers],
        extra_compile_args=CFLAGS,
    )
    for name, headers in FASTPATH_HEADERS.items()
] + [
    Extension(
        "ixypy.sim._model",
        sources=["src/ixypy/sim/_model.pyx", "csrc/sim/sim_shared.c", "csrc/sim/sim_worker.c", "csrc/sim/sim_msix.c",
                 "csrc/sim/virtio_model.c"] + INTEL_MODEL,
        include_dirs=["csrc", "csrc/sim"],
        depends=["src/ixypy/sim/_intel_model.pxi", "src/ixypy/sim/_virtio_model.pxi",
                 "csrc/sim/sim_model.h", "csrc/sim/sim_dma.h", "csrc/sim/sim_flows.h", "csrc/sim/sim_worker.h", "csrc/sim/sim_shared.h", "csrc/sim/sim_msix.h",
                 "csrc/sim/intel_model.h", "csrc/sim/intel_core.h", "csrc/sim/virtio_model.h", "csrc/ixy_regs.h", "csrc/ixy_portio.h",
                 "csrc/ixy_poll_hook.h", "src/ixypy/fastpath/poll_hook.pxd"],
        extra_compile_args=CFLAGS,
        extra_link_args=["-pthread"],
    ),
]

setup(
    # the extensions compile in parallel, one per core
    options={"build_ext": {"parallel": os.cpu_count() or 1}},
    ext_modules=cythonize(
        extensions,
        language_level=3,
        compiler_directives={
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
            "embedsignature": True,
        },
    ),
)
