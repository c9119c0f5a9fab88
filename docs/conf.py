"""Sphinx configuration for the flask_jwt_authentication documentation."""

from __future__ import annotations

project = "flask_jwt_authentication"
author = "The flask_jwt_authentication developers"
copyright = "2026, The flask_jwt_authentication developers"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "sphinx.ext.intersphinx",
]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
intersphinx_mapping = {}
exclude_patterns = ["_build"]
html_theme = "alabaster"
nitpicky = False
