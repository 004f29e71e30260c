"""One table of named resolutions for room configs, the streams' optional lists and the transcoder."""

import subprocess
import sys

import pytest
from django.conf import settings

from conference.live_serializers import resolve_resolution
from streamengine.media.resolutions import NAMED_RESOLUTIONS
from streamengine.media.transcode import target_size


@pytest.mark.parametrize("name", sorted(NAMED_RESOLUTIONS))
def test_every_named_resolution_means_the_same_size_everywhere(name):
    width, height = NAMED_RESOLUTIONS[name]
    assert resolve_resolution(name, {"width": 640, "height": 480}) == {"width": width, "height": height}
    assert target_size(name, 640, 480) == (width, height)


def test_table_imports_neither_django_nor_channels():
    code = (
        "import sys, streamengine.media.resolutions; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'django', 'channels', 'conference'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=settings.BASE_DIR, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
