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


def _api(authorization: str):
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=authorization)
    return api


@pytest.fixture
def write_key(client_row):
    return services.client_key_issue(client=client_row, kind="write")


@pytest.fixture
def read_key(client_row):
    return services.client_key_issue(client=client_row, kind="read")


@pytest.fixture
def tracker(write_key):
    """The tracker (or player) of client 11111111: its write key in the Authorization header."""
    return _api(f"Bearer {write_key}")


@pytest.fixture
def reader(read_key):
    """A dashboard of client 11111111: its read key in the Authorization header."""
    return _api(f"Bearer {read_key}")


@pytest.fixture
def operator(db, django_user_model):
    """A portal operator: a staff user's DRF token."""
    from rest_framework.authtoken.models import Token

    user = django_user_model.objects.create_user(username="portal-operator", password="x", is_staff=True)
    return _api(f"Token {Token.objects.create(user=user).key}")
