"""The README's pytest-plugin example, taken from the README text, runs as
a user's test file in a pytest of its own with the plugin. (Mutation shown
to fail: `faults(a).remove()` dropped from the README block: DID NOT RAISE.)"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_block() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Testing your own packet code"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_plugin_example_passes(tmp_path):
    (tmp_path / "test_users.py").write_text(readme_block())
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "ixypy.testing", "-p", "no:cacheprovider",
                           "test_users.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "2 passed" in done.stdout
