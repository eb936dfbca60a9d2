"""What the tests of the vector ops share: a debug pool on plain memory."""
import pytest

from ixypy.fastpath.mempool import DmaMemory, Mempool


@pytest.fixture(scope="module")
def pool():
    return Mempool(DmaMemory(1024 * 2048), 1024, debug=True)
