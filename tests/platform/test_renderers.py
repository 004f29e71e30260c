"""owt.renderers.JSONRenderer (orjson) writes what DRF's JSONRenderer writes."""

import datetime
import decimal
import uuid

import orjson
import pytest
from django.utils.translation import gettext_lazy
from rest_framework.renderers import JSONRenderer as DrfJSONRenderer

from owt.renderers import JSONRenderer

UTC = datetime.UTC
CASES = [
    {"name": "room", "n": 1, "f": 0.8, "neg": -3, "t": True, "none": None, "list": [1, "a", {"b": []}]},
    [{"_id": "5f1e", "views": [{"label": "common"}]}],
    {"unicode": "Ünïcødé ✓ 𝄞", "separators": "line\u2028para\u2029end", "quote": 'a"b\\c\n'},
    {"aware": datetime.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC), "date": datetime.date(2026, 1, 2)},
    {"naive": datetime.datetime(2026, 1, 2, 3, 4, 5), "time": datetime.time(1, 2, 3, 4000)},
    {"decimal": decimal.Decimal("1.50"), "uuid": uuid.UUID(int=7), "lazy": gettext_lazy("Not found.")},
    {1: "integer key", "tuple": (1, 2), "big": 2**70},
    "plain string",
]


@pytest.mark.parametrize("data", CASES)
def test_same_bytes_as_drf(data):
    assert JSONRenderer().render(data) == DrfJSONRenderer().render(data)


def test_an_indent_asked_for_is_drf_s():
    data = {"a": [1, 2]}
    accepted = "application/json; indent=2"
    assert JSONRenderer().render(data, accepted) == DrfJSONRenderer().render(data, accepted)


def test_cached_fragments_are_spliced_in_either_way():
    fragment = orjson.Fragment(orjson.dumps({"_id": "r1", "name": "Ä"}))
    assert (
        JSONRenderer().render([fragment, fragment])
        == b'[{"_id":"r1","name":"\xc3\x84"},{"_id":"r1","name":"\xc3\x84"}]'
    )
    # The stdlib path (an indent, a 65-bit integer) reads the fragment back.
    assert orjson.loads(JSONRenderer().render([fragment], "application/json; indent=2")) == [{"_id": "r1", "name": "Ä"}]
    big = {"rooms": [fragment], "big": 2**70}
    assert orjson.loads(JSONRenderer().render(big).replace(b"1180591620717411303424", b"0")) == {
        "rooms": [{"_id": "r1", "name": "Ä"}],
        "big": 0,
    }


def test_none_renders_nothing():
    assert JSONRenderer().render(None) == b""
