"""Mixed-view layout templates, generated exactly as the reference server does.

A template is ``{"region": [{"id", "shape": "rectangle", "area": {left, top, width,
height}}]}``. Generated areas are *unreduced* fractions (``"0/2"``, ``"1/2"``) because
that is what the reference produces and mixed streams report; custom areas are reduced
(``"2/4"`` → ``"1/2"``) as the reference's fraction parser does. By default areas are
``"n/d"`` strings; ``rational=True`` gives the reference's ``{"numerator", "denominator"}``.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

Ratio = tuple[int, int]


def _area(value: Ratio, rational: bool) -> Any:
    numerator, denominator = value
    return {"numerator": numerator, "denominator": denominator} if rational else f"{numerator}/{denominator}"


def _region(region_id: int | str, left: Ratio, top: Ratio, size: Ratio, rational: bool) -> dict:
    return {
        "id": str(region_id),
        "shape": "rectangle",
        "area": {
            "left": _area(left, rational),
            "top": _area(top, rational),
            "width": _area(size, rational),
            "height": _area(size, rational),
        },
    }


def fluid(max_input: int, *, rational: bool = False) -> list[dict]:
    """d×d grids for d = 1..ceil(sqrt(maxInput)), regions numbered row by row."""
    templates = []
    for d in range(1, math.isqrt(max_input - 1) + 2):  # 1..ceil(sqrt(max_input))
        regions = [_region(y * d + x + 1, (x, d), (y, d), (1, d), rational) for y in range(d) for x in range(d)]
        templates.append({"region": regions})
    return templates


def _lecture_limit(value: Fraction) -> Fraction:
    # The reference adds 1 to a fractional bound and keeps the fraction, then caps at 7.
    if value.denominator != 1:
        value += 1
    return min(value, Fraction(7))


def lecture(max_input: int, *, rational: bool = False) -> list[dict]:
    """One big region plus small ones around it (right column, then bottom row right to left)."""
    templates = [
        {"region": [_region(1, (0, 1), (0, 1), (1, 1), rational)]},
        {
            "region": [
                _region(1, (0, 1), (0, 1), (2, 3), rational),
                _region(2, (2, 3), (0, 1), (1, 3), rational),
                _region(3, (2, 3), (1, 3), (1, 3), rational),
                _region(4, (2, 3), (2, 3), (1, 3), rational),
                _region(5, (1, 3), (2, 3), (1, 3), rational),
                _region(6, (0, 1), (2, 3), (1, 3), rational),
            ]
        },
    ]
    if max_input <= 6:
        return templates
    limit = _lecture_limit(Fraction(max_input, 2))
    d = 4
    while d <= limit:
        main = (d - 1, d)
        regions = [_region(1, (0, 1), (0, 1), main, rational)]
        for y in range(d):
            regions.append(_region(len(regions) + 1, main, (y, d), (1, d), rational))
        for x in range(d - 2, -1, -1):
            regions.append(_region(len(regions) + 1, (x, d), main, (1, d), rational))
        templates.append({"region": regions})
        d += 1
    if max_input <= 14:
        return templates
    limit = _lecture_limit(Fraction(max_input + 3, 4))
    d = 4
    while d <= limit:
        main = (d - 2, d)
        regions = [_region(1, (0, 1), (0, 1), main, rational)]
        for y in range(d - 1):
            regions.append(_region(len(regions) + 1, main, (y, d), (1, d), rational))
        for x in range(d - 3, -1, -1):
            regions.append(_region(len(regions) + 1, (x, d), main, (1, d), rational))
        for y in range(d):
            regions.append(_region(len(regions) + 1, (d - 1, d), (y, d), (1, d), rational))
        for x in range(d - 2, -1, -1):
            regions.append(_region(len(regions) + 1, (x, d), (d - 1, d), (1, d), rational))
        templates.append({"region": regions})
        d += 1
    return templates


def _custom(template: dict, rational: bool) -> dict:
    regions = []
    for region in template["region"]:
        area = {}
        for name in ("left", "top", "width", "height"):
            value = Fraction(str(region["area"][name]))
            area[name] = _area((value.numerator, value.denominator), rational)
        regions.append({"id": region["id"], "shape": region.get("shape", "rectangle"), "area": area})
    result = {"region": regions}
    if "primary" in template:
        result["primary"] = template["primary"]
    return result


def expand(base: str, max_input: int, custom: list[dict] | None = None, *, rational: bool = False) -> list[dict]:
    """The template list the mixer uses: the base's templates with the custom ones merged in.

    Each custom template (n regions) replaces the first template with exactly n regions,
    or is inserted before the first one with more, or appended; "first" is positional,
    as in the reference (the lecture list is not sorted by size).
    """
    if base == "void":
        templates: list[dict] = []
    elif base == "lecture":
        templates = lecture(max_input, rational=rational)
    else:  # fluid, and the reference's fallback for any other base
        templates = fluid(max_input, rational=rational)
    for template in custom or []:
        converted = _custom(template, rational)
        size = len(converted["region"])
        position = next((i for i, t in enumerate(templates) if len(t["region"]) >= size), None)
        if position is None:
            templates.append(converted)
        elif len(templates[position]["region"]) == size:
            templates[position] = converted
        else:
            templates.insert(position, converted)
    return templates


def choose_template(templates: list[dict], count: int) -> dict | None:
    """The first template (list order, as the reference) with room for ``count`` inputs, else the largest."""
    if not templates:
        return None
    fitting = next((t for t in templates if len(t["region"]) >= count), None)
    return fitting or max(templates, key=lambda t: len(t["region"]))


def assign(templates: list[dict], inputs: list[str], previous: list[dict], *, primary: str | None = None) -> list[dict]:
    """The mixed stream's layout: ``[{"stream", "region"}]`` for the inputs that fit.

    Inputs keep their order from ``previous`` (nobody jumps around when someone joins);
    newcomers follow in ``inputs`` order; ``primary`` (the active speaker, when the view
    keeps it primary) takes the first region, which is the big one in lecture templates.
    The template is the first with enough regions for the inputs.
    """
    kept = [entry["stream"] for entry in previous if entry.get("stream") in inputs]
    order = kept + [stream for stream in inputs if stream not in kept]
    if primary in order:
        order.remove(primary)
        order.insert(0, primary)
    template = choose_template(templates, len(order))
    if template is None:
        return []
    return [{"stream": stream, "region": region} for stream, region in zip(order, template["region"], strict=False)]


def assign_pinned(layout: list[dict], inputs: list[str], *, primary: str | None = None) -> list[dict]:
    """A layout set by the operator (LayoutUpdate) keeps its regions: streams that left
    leave their region empty, newcomers take empty regions in order, ``primary`` is moved
    to the first region (swapping with whoever was there)."""
    entries = [dict(entry) for entry in layout]
    for entry in entries:
        if entry.get("stream") not in inputs:
            entry.pop("stream", None)
    placed = {entry.get("stream") for entry in entries}
    newcomers = iter([stream for stream in inputs if stream not in placed])
    for entry in entries:
        if "stream" not in entry:
            stream = next(newcomers, None)
            if stream is None:
                break
            entry["stream"] = stream
    if primary is not None and entries and entries[0].get("stream") != primary:
        current = next((entry for entry in entries if entry.get("stream") == primary), None)
        if current is not None:
            current["stream"], entries[0]["stream"] = entries[0].get("stream"), primary
            if current["stream"] is None:
                del current["stream"]
    # Entries carry their keys in the reference's order: stream, then region.
    return [{**({"stream": e["stream"]} if "stream" in e else {}), "region": e["region"]} for e in entries]


def rational_area(area: dict) -> dict:
    """A REST area (``"n/d"`` strings, ``"0"``, ``"1"``) in the mixed-info form (unreduced as given)."""
    result = {}
    for name in ("left", "top", "width", "height"):
        text = str(area[name])
        numerator, _, denominator = text.partition("/")
        result[name] = {"numerator": int(numerator), "denominator": int(denominator or 1)}
    return result
