"""Shared fixtures. Tests run on the embedded defaults unless DATABASE_URL etc. say otherwise."""

import pytest


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()
