"""Sphinx configuration of ixypy's API documentation: generated from the
docstrings and stubs of the installed (or in-place built) package, with the
README as its front page. Built by tests/docs/test_api_docs.py with warnings
as errors, so it cannot rot:

    python -m sphinx -W -b html docs/api build/api-docs
"""
import importlib

# the compiled modules as they run: imported here first, autodoc documents
# them rather than executing their .pyi stubs as modules (Sphinx 9 would)
for _name in ("ixypy", "ixypy.fastpath.batch", "ixypy.fastpath.mempool", "ixypy.fastpath.queue",
              "ixypy.fastpath.ops", "ixypy.fastpath.loops", "ixypy.vector", "ixypy.aio", "ixypy.testing",
              "ixypy.apps", "ixypy.processes"):
    importlib.import_module(_name)

project = "ixypy"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "myst_parser"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]
html_theme = "alabaster"
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
# the README links to files of the repository (docs/vector.md,
# benchmarks/README.md, examples/), not to pages of these docs
suppress_warnings = ["myst.xref_missing"]
