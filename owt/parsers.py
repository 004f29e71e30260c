"""The JSON parser of every DRF API: bounded nesting, and only text a database can store.

DRF's parser lets ``json`` recurse as deep as the body nests (100k levels is a
``RecursionError``, a 500) and hands NUL bytes and lone surrogates through, which PostgreSQL
refuses (another 500). This one answers both with a parse error, a 400 in the API's format.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

# What no text column (nor jsonb) can hold: NUL, and UTF-16 surrogates not part of a pair.
UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")
# Bounds integers from query strings so offsets and page arithmetic stay inside a bigint.
QUERY_INTEGER_MAX = 2**31 - 1


def has_unstorable_text(value: str) -> bool:
    return UNSTORABLE_TEXT.search(value) is not None


def check_json_tree(data: Any, max_depth: int) -> None:
    """Raise ParseError if ``data`` nests deeper than ``max_depth`` or holds unstorable text."""
    pending = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            if has_unstorable_text(value):
                raise ParseError("JSON strings must not contain NUL characters or lone surrogates")
            continue
        if not isinstance(value, (dict, list)):
            continue
        if depth > max_depth:
            raise ParseError(f"JSON nested deeper than {max_depth} levels")
        items = value.items() if isinstance(value, dict) else ((None, item) for item in value)
        for key, item in items:
            if key is not None:
                pending.append((key, depth))
            pending.append((item, depth + 1))


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:  # the decoder's own recursion limit (about 1000 levels)
            raise ParseError(f"JSON nested deeper than {settings.MAX_JSON_DEPTH} levels") from exc
        check_json_tree(data, settings.MAX_JSON_DEPTH)
        return data
