"""Swagger UI and ReDoc load nothing from another site: their assets are the portal's static files."""

import re

import pytest


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/", "/api/docs/?script="])
def test_api_docs_reference_only_local_assets(client, path):
    response = client.get(path)
    assert response.status_code == 200
    page = response.content.decode()
    assert not re.search(r"(src|href)=\"https?://", page), page
    assert "cdn.jsdelivr" not in page and "fonts.googleapis" not in page


@pytest.mark.parametrize(
    "asset",
    [
        "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js",
        "/static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js",
    ],
)
def test_api_docs_assets_are_served(client, asset):
    page = client.get("/api/docs/" if "swagger" in asset else "/api/redoc/").content.decode()
    assert asset in page
    response = client.get(asset)
    assert response.status_code == 200
    assert b"".join(response.streaming_content if response.streaming else [response.content])
