"""Mempool and PacketBatch on ordinary memory (no device needed)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ixypy import DmaMemory, Mempool, PacketBatch
from ixypy.errors import BatchError, DoubleFree, PacketTooLarge

PAGE = 2 * 1024 * 1024


def make_pool(num_bufs: int = 256, entry_size: int = 2048, debug: bool = False, pages: int = 1) -> Mempool:
    mem = DmaMemory(PAGE * pages)
    # pretend DMA pages are scattered: page i at a far-away address
    page_dma = [0x4000_0000 + 0x1000_0000 * (pages - i) for i in range(pages)]
    return Mempool(mem, num_bufs, entry_size, page_dma, PAGE, debug)


def test_alloc_every_buffer_then_exhaustion():
    pool = make_pool(64)
    batch = PacketBatch(64)
    assert batch.alloc(pool) == 64
    assert pool.free_count == 0
    assert PacketBatch(8).alloc(pool) == 0          # exhausted: nothing, no error
    addresses = {batch.dma_address(i) for i in range(64)}
    assert len(addresses) == 64
    batch.free()
    assert pool.free_count == 64 and len(batch) == 0


def test_dma_address_translated_per_page():
    pool = make_pool(2048, pages=2)
    per_page = PAGE // 2048
    assert pool.buf_dma(0) == 0x6000_0000 + 128              # page 0 -> second-listed address
    assert pool.buf_dma(per_page) == 0x5000_0000 + 128       # page 1 is not contiguous with page 0
    assert pool.buf_dma(per_page - 1) == 0x6000_0000 + PAGE - 2048 + 128


def test_entry_must_not_straddle_pages():
    with pytest.raises(ValueError, match="divide"):
        Mempool(DmaMemory(PAGE), 100, 2048 + 64, [0], PAGE)


def test_detach_and_attach_keep_a_packet_across_batches():
    pool = make_pool(16)
    batch = PacketBatch(4)
    batch.alloc(pool, length=60)
    batch.write(2, b"kept" + bytes(56))
    index = batch.detach(2)
    assert len(batch) == 3
    batch.free()
    assert pool.free_count == 15                      # the detached one is still out
    other = PacketBatch(1)
    other.attach(pool, index)
    assert bytes(other[0][:4]) == b"kept"
    other.free()
    assert pool.free_count == 16


def test_double_free_caught_in_debug_mode():
    pool = make_pool(16, debug=True)
    batch = PacketBatch(4)
    batch.alloc(pool, 1)
    index = batch.detach(0)
    batch.attach(pool, index)
    batch.attach(pool, index)                          # the same buffer twice
    with pytest.raises(DoubleFree, match=f"buffer {index} freed twice"):
        batch.free()
    assert pool.free_count == 16 and pool.double_frees == 1
    assert len(batch) == 0


def test_packet_bytes_zero_copy_and_lengths():
    pool = make_pool(8)
    batch = PacketBatch(4)
    batch.alloc(pool, 2, length=60)
    batch[0][0:4] = b"abcd"
    assert bytes(batch[0][:4]) == b"abcd"
    assert batch.length(1) == 60 and batch.total_bytes() == 120
    batch.write(1, b"x" * 100)
    assert batch.length(1) == 100 and bytes(batch[1]) == b"x" * 100
    with pytest.raises(PacketTooLarge):
        batch.write(0, bytes(pool.buf_capacity + 1))
    with pytest.raises(PacketTooLarge):
        batch.alloc(pool, 1, length=pool.buf_capacity + 1)
    with pytest.raises(IndexError):
        batch[2]
    batch.free()


def test_template_fill_round_robin():
    pool = make_pool(8)
    pool.fill([b"A" * 60, b"B" * 70])
    batch = PacketBatch(8)
    batch.alloc(pool)
    assert [bytes(batch[i][:1]) for i in range(8)] == [b"A", b"B"] * 4
    assert [batch.length(i) for i in range(4)] == [60, 70, 60, 70]
    batch.free()


def test_sequence_stamp_and_check():
    pool = make_pool(64)
    batch = PacketBatch(32)
    batch.alloc(pool, length=60)
    assert batch.stamp_u64(42, 100) == 132
    assert batch.check_seq_u64(42, 100) == (132, 0)
    assert batch.check_seq_u64(42, 99) == (132, 1)
    batch[5][42:50] = (7).to_bytes(8, "little")
    assert batch.check_seq_u64(42, 100) == (132, 2)    # the bad one and the one after it
    short = PacketBatch(1)
    short.alloc(pool, length=20)
    with pytest.raises(PacketTooLarge):
        short.stamp_u64(42, 0)
    batch.free()
    short.free()


def test_sequence_stamp_skips_a_short_packet_then_raises():
    pool = make_pool(8)
    batch = PacketBatch(3)
    batch.alloc(pool, length=60)
    batch.set_length(1, 20)
    batch[1][:] = bytes(20)
    with pytest.raises(PacketTooLarge, match="packet 1 .*at least 50 bytes"):
        batch.stamp_u64(42, 10)
    assert int.from_bytes(batch[0][42:50], "little") == 10
    assert bytes(batch[1]) == bytes(20)                      # untouched
    assert int.from_bytes(batch[2][42:50], "little") == 12   # its own number: 11 is skipped
    batch.free()


def test_batch_capacity_zero_refused():
    with pytest.raises(BatchError):
        PacketBatch(0)


def test_dropping_a_batch_returns_its_buffers():
    pool = make_pool(16)
    batch = PacketBatch(16)
    batch.alloc(pool)
    assert pool.free_count == 0
    del batch
    assert pool.free_count == 16


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 40)), max_size=60))
def test_random_alloc_free_sequences_conserve_buffers(ops):
    pool = make_pool(64, debug=True)
    held = []
    for alloc, n in ops:
        if alloc:
            batch = PacketBatch(n)
            got = batch.alloc(pool)
            assert got == min(n, 64 - sum(len(b) for b in held))
            held.append(batch)
        elif held:
            held.pop(n % len(held)).free()
        assert pool.free_count + sum(len(b) for b in held) == 64
    addresses = [b.dma_address(i) for b in held for i in range(len(b))]
    assert len(addresses) == len(set(addresses))          # no buffer handed out twice
    for b in held:
        b.free()
    assert pool.free_count == 64 and pool.double_frees == 0


def test_cycle_collector_frees_a_batch_before_its_pool():
    """A batch caught in a reference cycle with the last reference to its
    pool: the collector must let the batch return its buffers first."""
    import gc

    class Holder(PacketBatch):
        pass

    pool = make_pool(64)
    batch = Holder(8)
    batch.alloc(pool)
    batch.me = batch                   # a cycle through the batch itself
    del pool, batch
    gc.collect()                       # crashed (freed memory touched) before no_gc_clear
