"""Fixtures for portal_stats: a registered client with a stream and a quality."""

import pytest

from portal_stats import services


@pytest.fixture
def client_row(db):
    return services.client_get_or_insert(uuid="11111111", name="ACME TV")[0]


@pytest.fixture
def stream_row(client_row):
    return services.stream_get_or_insert(
        client_id=client_row.id, cdn_stream="http://cdn2.viblast.com/streams/big_buck_bunny/adaptive/975k/stream.m3u8"
    )[0]


@pytest.fixture
def quality_row(stream_row):
    return services.quality_get_or_insert(stream_id=stream_row.id, bitrate=975)[0]
