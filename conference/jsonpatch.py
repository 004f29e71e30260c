"""RFC 6902 JSON Patch, which the official OWT REST clients send for partial updates
(``updateRoomPartially(room, [{op: "replace", path: "/participantLimit", value: 10}])``).

Paths without the leading ``/`` (the older client docs write ``views/0/label``) are accepted.
Failures raise :class:`JsonPatchError` naming the operation (``patch[1]: ...``).
"""

from __future__ import annotations

import copy
from typing import Any


class JsonPatchError(ValueError):
    pass


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str):
        raise JsonPatchError("path must be a string like /views/0/label")
    if path in ("", "/"):
        return []
    return [token.replace("~1", "/").replace("~0", "~") for token in path.lstrip("/").split("/")]


def _index(container: list, token: str, *, for_insert: bool = False) -> int:
    if for_insert and token == "-":
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise JsonPatchError(f"{token!r} is not an array index")
    index = int(token)
    if index > len(container) or (index == len(container) and not for_insert):
        raise JsonPatchError(f"array index {index} is out of range")
    return index


def _parent(document: Any, tokens: list[str]) -> Any:
    node = document
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token)]
        else:
            raise JsonPatchError(f"/{'/'.join(tokens)} does not exist")
    return node


def _get(document: Any, tokens: list[str]) -> Any:
    if not tokens:
        return document
    parent, last = _parent(document, tokens), tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last)]
    raise JsonPatchError(f"/{'/'.join(tokens)} does not exist")


def _remove(document: Any, tokens: list[str]) -> Any:
    if not tokens:
        raise JsonPatchError("cannot remove the whole document")
    parent, last = _parent(document, tokens), tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(parent, last))
    raise JsonPatchError(f"/{'/'.join(tokens)} does not exist")


def _add(document: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent, last = _parent(document, tokens), tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, for_insert=True), value)
    else:
        raise JsonPatchError(f"/{'/'.join(tokens[:-1])} is not an object or array")
    return document


def apply(document: Any, operations: Any) -> Any:
    """A patched deep copy of ``document``; the original is never modified."""
    if not isinstance(operations, list):
        raise JsonPatchError("a JSON Patch is an array of operations")
    result = copy.deepcopy(document)
    for number, operation in enumerate(operations):
        try:
            if not isinstance(operation, dict):
                raise JsonPatchError("an operation is an object {op, path, value}")
            op, tokens = operation.get("op"), _pointer(operation.get("path"))
            if op in ("add", "replace", "test") and "value" not in operation:
                raise JsonPatchError(f"{op} needs a value")
            if op == "add":
                result = _add(result, tokens, copy.deepcopy(operation["value"]))
            elif op == "remove":
                _remove(result, tokens)
            elif op == "replace":
                if tokens:
                    _remove(result, tokens)
                result = _add(result, tokens, copy.deepcopy(operation["value"]))
            elif op == "test":
                if _get(result, tokens) != operation["value"]:
                    raise JsonPatchError(f"test failed at {operation['path']}")
            elif op in ("move", "copy"):
                source = _pointer(operation.get("from"))
                value = _remove(result, source) if op == "move" else copy.deepcopy(_get(result, source))
                result = _add(result, tokens, value)
            else:
                raise JsonPatchError(f"unknown op {op!r} (add, remove, replace, move, copy, test)")
        except JsonPatchError as exc:
            raise JsonPatchError(f"patch[{number}]: {exc}") from None
    return result
