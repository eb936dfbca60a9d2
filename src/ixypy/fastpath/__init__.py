"""ixypy's compiled fast path, one module per concern, each declared in a
.pxd so other Cython modules can ``cimport`` its classes:

- ``regs``: ``Bar`` (memory BAR, MMIO) and ``PortIo`` (I/O-port BAR)
- ``mempool``: ``DmaMemory`` and ``Mempool`` (packet buffers in DMA memory)
- ``batch``: ``PacketBatch`` (a C array of buffers) and ``PoolRefs``
- ``queue``: ``Queue``, the base of every driver's rx and tx queue
- ``intel``: the advanced-descriptor rings of ixgbe and igb
- ``virtio``: the legacy virtio-net virtqueues
- ``bench``: the C-driven loops of the benchmarks (not used by drivers)

Everything per packet runs without the GIL and without Python objects;
Python is touched once per batch.
"""
