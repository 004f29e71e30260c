"""One table of named resolutions for room configs, the streams' optional lists and the transcoder."""

import pytest

from conference.live_serializers import resolve_resolution
from streamengine.media.resolutions import NAMED_RESOLUTIONS, target_size


@pytest.mark.parametrize("name", sorted(NAMED_RESOLUTIONS))
def test_every_named_resolution_means_the_same_size_everywhere(name):
    width, height = NAMED_RESOLUTIONS[name]
    assert resolve_resolution(name, {"width": 640, "height": 480}) == {"width": width, "height": height}
    assert target_size(name, 640, 480) == (width, height)
