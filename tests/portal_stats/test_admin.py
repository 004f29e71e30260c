"""Admin pages: registry editable, rollups read-only."""

import pytest

from portal_stats import services


@pytest.mark.django_db
def test_admin_pages(admin_client, quality_row):
    services.reports_ingest(reports=[{"session": "a", "stream": quality_row.stream_id}], now=1_700_000_000)
    services.stats_aggregate(start=1_699_999_940, end=1_700_000_060)
    for model in ("client", "stream", "streamquality", "statsbucket"):
        response = admin_client.get(f"/admin/portal_stats/{model}/")
        assert response.status_code == 200, model
    assert b"11111111" in admin_client.get("/admin/portal_stats/client/").content
    assert admin_client.get(f"/admin/portal_stats/stream/{quality_row.stream_id}/change/").status_code == 200
    assert admin_client.get("/admin/portal_stats/statsbucket/add/").status_code == 403
    bucket_page = admin_client.get("/admin/portal_stats/statsbucket/?step__exact=3600")
    assert bucket_page.status_code == 200 and b"1699999200" in bucket_page.content.replace(b",", b"")
