"""The ``jwt-settings`` directive: the tables of docs/config.rst, written from
the settings registry (``flask_jwt_authentication.settings_registry``).

``.. jwt-settings::`` lists every setting (name, default, accepted values, and
the bounds of a run-time change); ``.. jwt-settings:: editable`` lists the
settings the admin edits at run time, in the form's order.
"""

from __future__ import annotations

import typing as t

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

from flask_jwt_authentication.settings_registry import REGISTRY
from flask_jwt_authentication.settings_registry import Setting


def shown_default(setting: Setting) -> str:
    """The default as the table shows it: a Python literal, or what it derives
    from."""
    if setting.default is None and setting.derived:
        return setting.derived
    return f"``{setting.default!r}``".replace("'", '"')


def rows(editable: bool) -> list[list[str]]:
    """The table's rows, header first."""
    if editable:
        header = ["Setting", "Admin field", "A change must be"]
        return [header] + [
            [f":data:`{s.name}`", s.label, s.bounds]
            for s in REGISTRY
            if s.editable is not None
        ]
    header = ["Setting", "Default", "Accepts", "Run-time change"]
    return [header] + [
        [
            f":data:`{s.name}`",
            shown_default(s),
            s.values,
            s.bounds if s.editable is not None else "no",
        ]
        for s in REGISTRY
    ]


def list_table(table: list[list[str]]) -> list[str]:
    """``table`` as the lines of a ``list-table``."""
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for row in table:
        first, *rest = row
        lines.append(f"   * - {first}")
        lines += [f"     - {cell}" for cell in rest]
    return lines


class SettingsTable(SphinxDirective):
    """``.. jwt-settings:: [editable]``."""

    optional_arguments = 1

    def run(self) -> list[nodes.Node]:
        editable = self.arguments == ["editable"]
        if self.arguments and not editable:
            raise self.error("jwt-settings takes no argument or 'editable'.")
        container = nodes.container(classes=["jwt-settings"])
        source = StringList(list_table(rows(editable)), source="settings registry")
        self.state.nested_parse(source, self.content_offset, container)
        return [container]


def setup(app: t.Any) -> dict[str, t.Any]:
    app.add_directive("jwt-settings", SettingsTable)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
