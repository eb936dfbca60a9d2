"""The API documentation (docs/api: Sphinx autodoc from the docstrings,
the README as its front page) builds with warnings as errors, so a
docstring that breaks reStructuredText, an API that moves or a README that
stops parsing fails here. The negative control: the same pages plus one
autodoc entry for a function that does not exist must fail to build."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def build(source: Path, out: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", source, out],
                          env=env, capture_output=True, text=True, timeout=600)


def test_api_docs_build_without_warnings(tmp_path):
    done = build(ROOT / "docs" / "api", tmp_path / "html")
    assert done.returncode == 0, done.stderr[-4000:]
    api = (tmp_path / "html" / "api.html").read_text()
    for name in ("ixypy.open", "ixypy.fastpath.batch.PacketBatch.alloc", "ixypy.device.Device.rx_batch",
                 "ixypy.fastpath.ops.keep", "ixypy.testing.Faults.remove", "ixypy.errors.DeviceGone"):
        assert f'id="{name}"' in api, name
    front = (tmp_path / "html" / "index.html").read_text()
    assert "User-space network drivers for Python" in front      # the README's first line


def test_a_missing_api_fails_the_build(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(ROOT / "docs" / "api", source)
    (source / "api.rst").write_text((source / "api.rst").read_text() + "\n.. autofunction:: ixypy.no_such_function\n")
    index = (source / "index.md").read_text().replace("../../README.md", str(ROOT / "README.md"))
    (source / "index.md").write_text(index)
    done = build(source, tmp_path / "html")
    assert done.returncode != 0
    assert "no_such_function" in done.stderr
