"""Sphinx configuration for the flask_jwt_authentication documentation."""

from __future__ import annotations

import sys
from pathlib import Path

# The jwt-settings directive (docs/settings_table.py) writes the settings tables
# from the package's registry.
sys.path.insert(0, str(Path(__file__).resolve().parent))

project = "flask_jwt_authentication"
author = "The flask_jwt_authentication developers"
copyright = "2026, The flask_jwt_authentication developers"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "sphinx.ext.intersphinx",
    "settings_table",
]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
intersphinx_mapping = {}
exclude_patterns = ["_build"]
html_theme = "alabaster"
nitpicky = False

# The doctests (``sphinx-build -b doctest``, run by tests/test_docs.py) import
# their application from docs/examples/doctest_app.py.
doctest_path = [str(Path(__file__).resolve().parent / "examples")]
