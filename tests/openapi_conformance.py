"""Responses of the extension's endpoints, checked against the OpenAPI document.

``conftest.py`` wraps every test in :func:`recording`: each response an endpoint of
the extension gives, in any app and any thread, is checked against the document
:func:`~flask_jwt_authentication.openapi.openapi_document` makes for its app, and
the test fails with the list of what the document does not allow: a path, method
or status it does not list, a missing or wrong header, a body of another media
type or not matching the schema.

Routes of the host applications (``/api/me``) are not the extension's and are
not checked. Validators are compiled once per document and schema.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import typing as t
import weakref

import flask
import referencing
import referencing.jsonschema
from jsonschema import Draft202012Validator
from werkzeug.wrappers import Response

from flask_jwt_authentication.openapi import openapi_document

#: Endpoints of the extension's blueprint start with this.
ENDPOINT_PREFIX = "jwt_authentication."
#: The document's URI inside the schema registry.
_URI = "urn:flask-jwt-authentication:openapi"
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_RULE_ARGUMENT = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")


def document_path(rule: str) -> str:
    """The document's path of a Werkzeug URL rule: ``<name>`` becomes ``{name}``."""
    return _RULE_ARGUMENT.sub(r"{\1}", rule)


class DocumentChecker:
    """One OpenAPI document, ready to check responses against."""

    def __init__(self, document: dict[str, t.Any]) -> None:
        self.document = document
        resource = referencing.jsonschema.DRAFT202012.create_resource(document)
        self._registry: referencing.Registry[t.Any] = (
            referencing.Registry().with_resource(_URI, resource)
        )
        self._validators: dict[str, Draft202012Validator] = {}

    def problems(self, rule: str, method: str, response: Response) -> list[str]:
        """What the document does not allow in ``response`` to ``method`` on the
        URL rule ``rule`` (Werkzeug syntax); empty when it conforms."""
        path = document_path(rule)
        item = self.document["paths"].get(path)
        if item is None:
            return [f"the path {path} is not in the document"]
        allowed = {m.upper() for m in item if m in _METHODS} | {"OPTIONS"}
        operation = item.get(method.lower())
        if operation is None:
            return self._other_method(path, method, response, allowed)
        escaped = path.replace("~", "~0").replace("/", "~1")
        pointer = f"/paths/{escaped}/{method.lower()}/responses"
        status = str(response.status_code)
        for key in (status, f"{status[0]}XX", "default"):
            if key in operation["responses"]:
                return self._response(f"{pointer}/{key}", method, response)
        documented = ", ".join(operation["responses"])
        return [f"status {status} is not documented (only {documented})"]

    def _other_method(
        self, path: str, method: str, response: Response, allowed: set[str]
    ) -> list[str]:
        """A method the path has no operation for: ``OPTIONS`` answers 200, any
        other the ``MethodNotAllowed`` response; both list the path's methods."""
        problems = []
        if method == "OPTIONS":
            if response.status_code != 200:
                problems.append(f"OPTIONS answered {response.status_code}, not 200")
        elif response.status_code != 405:
            problems.append(f"{method} is not an operation of {path} but did not 405")
        else:
            pointer = "/components/responses/MethodNotAllowed"
            problems.extend(self._response(pointer, method, response))
        listed = {m.strip() for m in response.headers.get("Allow", "").split(",")}
        if listed != allowed:
            problems.append(f"Allow lists {sorted(listed)}, not {sorted(allowed)}")
        return problems

    def _response(self, pointer: str, method: str, response: Response) -> list[str]:
        pointer, definition = self._deref(pointer)
        problems = []
        for name in definition.get("headers", {}):
            problems.extend(self._header(f"{pointer}/headers/{name}", name, response))
        content = definition.get("content")
        body = response.get_data()
        if method == "HEAD":
            return problems
        if content is None:
            if body:
                problems.append(f"a body where the document has none: {body[:200]!r}")
            return problems
        if response.mimetype not in content:
            return [*problems, f"media type {response.mimetype!r}, not {list(content)}"]
        media = response.mimetype.replace("~", "~0").replace("/", "~1")
        try:
            value = json.loads(body)
        except ValueError:
            return [*problems, f"the body is not JSON: {body[:200]!r}"]
        validator = self._validator(f"{pointer}/content/{media}/schema")
        for error in validator.iter_errors(value):
            where = "/".join(str(p) for p in error.absolute_path) or "(the body)"
            problems.append(f"body {where}: {error.message}")
        return problems

    def _header(self, pointer: str, name: str, response: Response) -> list[str]:
        pointer, header = self._deref(pointer)
        value = response.headers.get(name)
        if value is None:
            return [f"the {name} header is missing"] if header.get("required") else []
        if "schema" not in header:
            return []
        instance: t.Any = value
        if header["schema"].get("type") == "integer":
            if not value.isdigit():
                return [f"the {name} header is not an integer: {value!r}"]
            instance = int(value)
        validator = self._validator(f"{pointer}/schema")
        return [
            f"the {name} header: {e.message}" for e in validator.iter_errors(instance)
        ]

    def _deref(self, pointer: str) -> tuple[str, t.Any]:
        """The node at ``pointer``, following local ``$ref`` chains."""
        node = self._node(pointer)
        while isinstance(node, dict) and "$ref" in node:
            pointer = node["$ref"].removeprefix("#")
            node = self._node(pointer)
        return pointer, node

    def _node(self, pointer: str) -> t.Any:
        node: t.Any = self.document
        for part in pointer.split("/")[1:]:
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def _validator(self, pointer: str) -> Draft202012Validator:
        validator = self._validators.get(pointer)
        if validator is None:
            validator = Draft202012Validator(
                {"$ref": f"{_URI}#{pointer}"},
                registry=self._registry,
                format_checker=Draft202012Validator.FORMAT_CHECKER,
            )
            self._validators[pointer] = validator
        return validator


_checkers: dict[str, DocumentChecker] = {}
_by_app: weakref.WeakKeyDictionary[flask.Flask, DocumentChecker] = (
    weakref.WeakKeyDictionary()
)
_lock = threading.Lock()
#: The lists of the active :func:`recording` blocks; the innermost one records.
_recordings: list[list[str]] = []


def checker_for(app: flask.Flask) -> DocumentChecker:
    """The checker of ``app``'s document, made on its first response."""
    with _lock:
        checker = _by_app.get(app)
        if checker is None:
            document = openapi_document(app)
            key = json.dumps(document, sort_keys=True)
            checker = _checkers.get(key)
            if checker is None:
                checker = _checkers[key] = DocumentChecker(document)
            _by_app[app] = checker
        return checker


def _check(sender: flask.Flask, response: Response, **extra: t.Any) -> None:
    """``request_finished`` receiver: check a response of the extension's."""
    rule = flask.request.url_rule
    if not _recordings or rule is None or not rule.endpoint.startswith(ENDPOINT_PREFIX):
        return
    try:
        problems = checker_for(sender).problems(
            rule.rule, flask.request.method, response
        )
    except Exception as e:  # a crash here must not break the request
        problems = [f"the check itself failed: {e!r}"]
    if problems:
        where = f"{flask.request.method} {flask.request.path} -> {response.status}"
        with _lock:
            if _recordings:
                _recordings[-1].extend(f"{where}: {p}" for p in problems)


@contextlib.contextmanager
def recording() -> t.Iterator[list[str]]:
    """Check every response of the extension's endpoints in the block; yields the
    list of violations (filled as they happen). An inner block takes them from an
    outer one."""
    violations: list[str] = []
    with _lock:
        if not _recordings:
            flask.request_finished.connect(_check)
        _recordings.append(violations)
    try:
        yield violations
    finally:
        with _lock:
            # Blocks nest, so this one is the innermost again.
            innermost = _recordings.pop()
            assert innermost is violations
            if not _recordings:
                flask.request_finished.disconnect(_check)
