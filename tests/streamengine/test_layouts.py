"""Layout templates: generated exactly as the reference server does (docs/management-api.md, "Layout templates")."""

import pytest

from streamengine.media import layouts


def cells(template):
    return [(r["id"], r["area"]["left"], r["area"]["top"], r["area"]["width"]) for r in template["region"]]


@pytest.mark.parametrize(
    ("max_input", "counts"),
    [(1, [1]), (2, [1, 4]), (4, [1, 4]), (5, [1, 4, 9]), (9, [1, 4, 9]), (10, [1, 4, 9, 16]), (16, [1, 4, 9, 16]),
     (17, [1, 4, 9, 16, 25]), (25, [1, 4, 9, 16, 25])],
)  # fmt: skip
def test_fluid_counts(max_input, counts):
    assert [len(t["region"]) for t in layouts.fluid(max_input)] == counts


def test_fluid_regions_row_by_row_unreduced():
    one, four, nine = layouts.fluid(9)
    assert cells(one) == [("1", "0/1", "0/1", "1/1")]
    assert cells(four) == [
        ("1", "0/2", "0/2", "1/2"),
        ("2", "1/2", "0/2", "1/2"),
        ("3", "0/2", "1/2", "1/2"),
        ("4", "1/2", "1/2", "1/2"),
    ]
    assert [(c[1], c[2]) for c in cells(nine)[3:6]] == [("0/3", "1/3"), ("1/3", "1/3"), ("2/3", "1/3")]
    assert all(r["shape"] == "rectangle" and r["area"]["width"] == r["area"]["height"] for r in nine["region"])


# Region counts follow the reference code (the bounds (m+3)/4 at m = 17 and 21 are integral,
# so those add no extra template; the compat table's 17 and 21 rows are one off).
@pytest.mark.parametrize(
    ("max_input", "counts"),
    [(1, [1, 6]), (6, [1, 6]), (7, [1, 6, 8]), (8, [1, 6, 8]), (9, [1, 6, 8, 10]), (12, [1, 6, 8, 10, 12]),
     (14, [1, 6, 8, 10, 12, 14]), (15, [1, 6, 8, 10, 12, 14, 13, 17]), (16, [1, 6, 8, 10, 12, 14, 13, 17]),
     (18, [1, 6, 8, 10, 12, 14, 13, 17, 21]), (22, [1, 6, 8, 10, 12, 14, 13, 17, 21, 25]),
     (256, [1, 6, 8, 10, 12, 14, 13, 17, 21, 25])],
)  # fmt: skip
def test_lecture_counts(max_input, counts):
    assert [len(t["region"]) for t in layouts.lecture(max_input)] == counts


def test_lecture_examples():
    templates = layouts.lecture(16)
    assert cells(templates[1]) == [
        ("1", "0/1", "0/1", "2/3"), ("2", "2/3", "0/1", "1/3"), ("3", "2/3", "1/3", "1/3"),
        ("4", "2/3", "2/3", "1/3"), ("5", "1/3", "2/3", "1/3"), ("6", "0/1", "2/3", "1/3"),
    ]  # fmt: skip
    assert cells(templates[2]) == [
        ("1", "0/1", "0/1", "3/4"), ("2", "3/4", "0/4", "1/4"), ("3", "3/4", "1/4", "1/4"), ("4", "3/4", "2/4", "1/4"),
        ("5", "3/4", "3/4", "1/4"), ("6", "2/4", "3/4", "1/4"), ("7", "1/4", "3/4", "1/4"), ("8", "0/4", "3/4", "1/4"),
    ]  # fmt: skip
    assert cells(templates[6]) == [
        ("1", "0/1", "0/1", "2/4"), ("2", "2/4", "0/4", "1/4"), ("3", "2/4", "1/4", "1/4"), ("4", "2/4", "2/4", "1/4"),
        ("5", "1/4", "2/4", "1/4"), ("6", "0/4", "2/4", "1/4"), ("7", "3/4", "0/4", "1/4"), ("8", "3/4", "1/4", "1/4"),
        ("9", "3/4", "2/4", "1/4"), ("10", "3/4", "3/4", "1/4"), ("11", "2/4", "3/4", "1/4"), ("12", "1/4", "3/4", "1/4"),
        ("13", "0/4", "3/4", "1/4"),
    ]  # fmt: skip


def square(n, size="1/2"):
    return {
        "region": [
            {"id": str(i + 1), "area": {"left": "0", "top": "0", "width": size, "height": size}} for i in range(n)
        ]
    }


def test_custom_merge_rules():
    assert layouts.expand("void", 16, []) == []
    # The 2-region template goes before the first template with >= 2 regions.
    assert [len(t["region"]) for t in layouts.expand("void", 16, [square(3), square(2)])] == [2, 3]
    merged = layouts.expand("fluid", 16, [square(4, "2/4"), square(2), square(20)])
    assert [len(t["region"]) for t in merged] == [1, 2, 4, 9, 16, 20]
    assert merged[2]["region"][0]["area"]["width"] == "1/2"  # replaced, custom areas reduced
    # Lecture's list is unsorted: the first template with >= 13 regions is the 14-region one.
    lecture = layouts.expand("lecture", 16, [square(13)])
    assert [len(t["region"]) for t in lecture] == [1, 6, 8, 10, 12, 13, 14, 13, 17]
    assert layouts.expand("unknown", 4) == layouts.fluid(4)


def test_rational_form():
    area = layouts.expand("fluid", 4, [square(2, "0.5")], rational=True)[1]["region"][0]["area"]
    assert area["width"] == {"numerator": 1, "denominator": 2}
    assert layouts.fluid(4, rational=True)[1]["region"][0]["area"]["left"] == {"numerator": 0, "denominator": 2}
