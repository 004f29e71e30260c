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
    assert bucket_page.status_code == 200 and b"2023-11-14 22:00:00 UTC" in bucket_page.content


@pytest.mark.django_db
def test_rollups_and_raw_reports_read_well(admin_client, quality_row):
    services.reports_ingest(reports=[{"session": "viewer-1", "stream": quality_row.stream_id}], now=1_700_000_000)
    services.stats_aggregate(start=1_699_999_940, end=1_700_000_060)
    rollups = admin_client.get("/admin/portal_stats/statsbucket/?step__exact=60").content.decode()
    assert "2023-11-14 22:13:00 UTC" in rollups and "a minute" in rollups
    assert ">all<" in rollups  # the client-level bucket: stream and quality 0 mean all of them
    reports = admin_client.get("/admin/portal_stats/viewerreport/")
    assert reports.status_code == 200
    assert "viewer-1" in reports.content.decode() and "2023-11-14 22:13:20 UTC" in reports.content.decode()
    assert admin_client.get("/admin/portal_stats/viewerreport/add/").status_code == 403


@pytest.mark.django_db
def test_admin_index_names_apps_and_tells_the_token_kinds_apart(admin_client):
    index = admin_client.get("/admin/").content.decode()
    assert "Portal stats (Viblast P2P CDN)" in index and "Portal_Stats" not in index
    assert "Room tokens" in index and "Dashboard tokens" in index
    for model in ("node", "participant", "publication", "subscription", "token", "mediajob"):
        assert admin_client.get(f"/admin/streamengine/{model}/").status_code == 200, model


@pytest.mark.django_db
def test_statistics_page_lists_the_registry_for_staff(admin_client, client, quality_row):
    page = admin_client.get("/portal/dashboard")
    assert page.status_code == 200
    (listed,) = [c for c in page.context["clients"] if c["uuid"] == "11111111"]
    assert listed["streams"][0]["qualities"] == [{"id": quality_row.id, "bitrate": quality_row.bitrate}]
    assert "/static/owt/charts.js" in page.content.decode()
    anonymous = client.get("/portal/dashboard")
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/admin/login/")
