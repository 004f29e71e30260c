"""A realistic two-participant call replayed through HTTP in the SDK's payload shapes."""

from __future__ import annotations

import pytest

from metrics.models import Conference, Connection, GenericEvent, Issue, Participant, Session, Summary, Track
from metrics.testing import gum_track, stats_payload

pytestmark = pytest.mark.django_db(transaction=True)

SAMPLES = 6
INTERVAL_MS = 10000
CALL_MS = (SAMPLES + 1) * INTERVAL_MS  # connections open 70 s before the end of the call


def _connect(sdk, peer_app_id: str, peer_name: str) -> dict:
    """addConnection and the browser's negotiation events, back-dated like held-back events."""
    status, ids = sdk.post(
        "connection",
        {
            "eventName": "addConnection",
            "peerId": peer_app_id,
            "peerName": peer_name,
            "connectionState": "new",
            "isSfu": False,
            "delta": CALL_MS,
        },
    )
    assert status == 200, ids
    assert set(ids) == {"peer_id", "connection_id"}
    common = {"peerId": ids["peer_id"], "connectionId": ids["connection_id"], "timestamp": None}
    events = [
        ("peerDetails", {"options": {"peerId": peer_app_id}, "peerConfiguration": {"iceServers": []}}),
        ("onnegotiationneeded", None),
        (
            "onsignalingstatechange",
            {
                "signalingState": "have-local-offer",
                "localDescription": {"type": "offer", "sdp": "v=0"},
                "remoteDescription": None,
            },
        ),
        ("onicegatheringstatechange", "gathering"),
        (
            "onicecandidate",
            {
                "address": "203.0.113.5",
                "candidate": "candidate:1 1 udp 1 203.0.113.5 50000 typ srflx",
                "component": "rtp",
                "foundation": "1",
                "port": 50000,
                "priority": 1,
                "protocol": "udp",
                "relatedAddress": None,
                "relatedPort": None,
                "sdpMLineIndex": 0,
                "sdpMid": "0",
                "tcpType": None,
                "type": "srflx",
                "usernameFragment": "abcd",
                "extra": "dropped",
            },
        ),
        (
            "onsignalingstatechange",
            {
                "signalingState": "stable",
                "localDescription": {"type": "offer", "sdp": "v=0"},
                "remoteDescription": {"type": "answer", "sdp": "v=0"},
            },
        ),
        ("oniceconnectionstatechange", "checking"),
        ("oniceconnectionstatechange", "connected"),
        ("onconnectionstatechange", "connected"),
        ("onicegatheringstatechange", "complete"),
    ]
    for offset, (name, data) in enumerate(events):
        body = {**common, "eventName": name, "delta": CALL_MS - 100 * (offset + 1)}
        if data is not None:
            body["data"] = data
        status, answer = sdk.post("connection", body)
        assert (status, answer) == (200, ""), (name, answer)
    return ids


def _remote_tracks(sdk, ids: dict) -> None:
    for kind, track_id in (("audio", "remote-audio"), ("video", "remote-video")):
        body = {
            "event": "ontrack",
            "peerId": ids["peer_id"],
            "connectionId": ids["connection_id"],
            "trackId": track_id,
            "data": {
                "id": track_id,
                "kind": kind,
                "label": kind,
                "enabled": True,
                "muted": False,
                "readyState": "live",
            },
        }
        status, answer = sdk.post("tracks", body)
        assert status == 200 and answer["data"]["direction"] == "inbound", answer
        # The SDK retries /tracks: a duplicate must not create a second row.
        assert sdk.post("tracks", body)[0] == 200


def _stats(sdk, ids: dict, **kwargs) -> None:
    for sample in range(SAMPLES):
        body = {
            "peerId": ids["peer_id"],
            "connectionId": ids["connection_id"],
            "timeTaken": 3,
            "data": stats_payload(sample, **kwargs),
            "delta": CALL_MS - INTERVAL_MS * (sample + 1),
        }
        assert sdk.post("stats", body) == (200, "")
        if sample == 2:
            # The SDK retries a request whose answer it lost, back-dated by the retry delay.
            assert sdk.post("stats", {**body, "delta": body["delta"] - 1000}) == (200, "")


def test_two_participant_call(app, sdk_factory, eager_celery):
    alice, bob = sdk_factory(), sdk_factory()
    alice.join(app.api_key, "room-42", "alice", "Alice")
    bob.join(app.api_key, "room-42", "bob", "Bob")

    # getUserMedia: constraints first, then the tracks.
    for client, prefix in ((alice, "a"), (bob, "b")):
        assert client.post("events/get-user-media", {"data": {"constraints": {"audio": True, "video": True}}}) == (
            200,
            "",
        )
        gum = {"data": {"audio": [gum_track("audio", f"{prefix}-mic")], "video": [gum_track("video", f"{prefix}-cam")]}}
        assert client.post("events/get-user-media", gum) == (200, "")
        assert (
            client.put("sessions", {"devices": [{"deviceId": "cam", "kind": "videoinput", "label": "Cam"}]})[0] == 200
        )

    alice_ids = _connect(alice, "bob", "Bob")
    bob_ids = _connect(bob, "alice", "Alice")
    _remote_tracks(alice, alice_ids)
    _remote_tracks(bob, bob_ids)

    # Alice receives clean media; Bob's side is relayed over TCP and loses 8 % of packets.
    _stats(alice, alice_ids)
    _stats(bob, bob_ids, loss_percent=8.0, candidate_type="relay", protocol="tcp")

    # A local track mute and an unknown track.
    assert alice.put("tracks", {"event": "mute", "trackId": "a-mic", "data": {}})[0] == 200
    assert alice.put("tracks", {"event": "ended", "trackId": "nope", "data": {}}) == (
        400,
        {"error_code": "track_not_found", "message": "The requested track does not exist."},
    )

    conference = Conference.objects.get(app=app, conference_id="room-42")
    assert conference.ongoing and conference.participants.count() == 2

    assert alice.post("events/browser", {"eventName": "endCall"}) == (200, "")
    conference.refresh_from_db()
    assert conference.ongoing, "Bob's connection is still up"
    assert bob.post("events/browser", {"eventName": "endCall"}) == (200, "")
    # endCall is retried by the SDK: a duplicate changes nothing.
    assert bob.post("events/browser", {"eventName": "endCall"}) == (200, "")

    conference.refresh_from_db()
    assert not conference.ongoing and conference.end_time is not None
    assert CALL_MS / 1000 - 1 <= conference.duration <= CALL_MS / 1000 + 5

    # Rows
    assert Participant.objects.filter(app=app).count() == 2
    assert Session.objects.filter(conference=conference).count() == 2
    assert all(s.end_time and s.duration > 0 and s.devices[0]["kind"] == "videoinput" for s in Session.objects.all())
    connections = list(Connection.objects.filter(conference=conference))
    assert len(connections) == 2
    for connection in connections:
        assert connection.state == "connected" and connection.end_time is not None
        assert CALL_MS / 1000 - 1 <= connection.duration <= CALL_MS / 1000 + 5
        assert connection.connection_info["established"] is True
        negotiation = connection.connection_info["negotiations"][0]
        assert negotiation["type"] == "initial" and negotiation["status"] in ("stable", "connected")
    assert {c.type for c in connections} == {"s", "r"}
    assert Track.objects.filter(direction="o", connection__isnull=True).count() == 4  # gUM tracks
    assert Track.objects.filter(direction="i").count() == 4  # remote tracks, no duplicates
    assert Track.objects.get(track_id="a-mic").track_info["muted"] is True
    assert GenericEvent.objects.filter(category="S").count() == 2 * (SAMPLES + 1)  # every POST is kept
    candidate = GenericEvent.objects.filter(type="onicecandidate").first().data
    assert "extra" not in candidate and candidate["type"] == "srflx"

    # Issues
    codes = sorted(Issue.objects.filter(conference=conference).values_list("code", flat=True))
    assert codes == ["tcp_used", "turn_used", "very_low_emos"], codes
    emos_issue = Issue.objects.get(code="very_low_emos")
    assert emos_issue.participant.participant_id == "bob" and emos_issue.data["average"] < 3

    # Summary (built by the Celery task queued when the call ended)
    summary = Summary.objects.get(conference=conference)
    series = {c["participant"]["name"]: c for c in summary.data["connections"]}
    assert set(series) == {"Alice", "Bob"}
    alice_series, bob_series = series["Alice"], series["Bob"]
    assert len(alice_series["samples"]) == SAMPLES
    assert alice_series["averages"]["audio_mos"] > 4.0
    assert bob_series["averages"]["audio_mos"] < 3.0
    assert all(s["packet_loss"] == pytest.approx(8.0, abs=0.1) for s in bob_series["samples"][1:])
    assert alice_series["samples"][1]["bitrate_in"] == 832000
    assert alice_series["samples"][2]["fps"] == pytest.approx(30.0, abs=0.1)
    assert alice_series["samples"][0]["rtt"] == pytest.approx(40.0)

    # Stats after the end: the SDK must stop.
    assert alice.post(
        "stats", {"peerId": alice_ids["peer_id"], "connectionId": alice_ids["connection_id"], "data": stats_payload(9)}
    ) == (
        400,
        {
            "error_code": "connection_ended",
            "message": "This connection has ended and we are no longer listening for events.",
        },
    )

    # Rebuilding does not duplicate the eMOS issue.
    from metrics.summary import summary_build

    summary_build(conference_id=conference.pk)
    assert Issue.objects.filter(code="very_low_emos").count() == 1


def test_rejoin_and_no_connection_issues(app, sdk_factory, eager_celery):
    first = sdk_factory()
    first.join(app.api_key, "room-9", "carol")
    first.post("events/get-user-media", {"data": {"constraints": {"audio": True}}})
    first.post(
        "events/get-user-media", {"data": {"error": {"name": "NotAllowedError", "message": "Permission denied"}}}
    )
    status, ids = first.post("connection", {"eventName": "addConnection", "peerId": "dave"})
    assert status == 200
    first.post(
        "connection",
        {
            "eventName": "oniceconnectionstatechange",
            "peerId": ids["peer_id"],
            "connectionId": ids["connection_id"],
            "data": "failed",
        },
    )
    first.post(
        "connection",
        {
            "eventName": "onconnectionstatechange",
            "peerId": ids["peer_id"],
            "connectionId": ids["connection_id"],
            "data": "disconnected",
        },
    )
    first.post(
        "connection",
        {
            "eventName": "onconnectionstatechange",
            "peerId": ids["peer_id"],
            "connectionId": ids["connection_id"],
            "data": "failed",
        },
    )
    assert first.post("events/browser", {"eventName": "unload"}) == (200, "")
    again = sdk_factory()
    again.join(app.api_key, "room-9", "carol")
    codes = sorted(Issue.objects.values_list("code", flat=True))
    assert codes == sorted(
        [
            "getusermedia_error",
            "ice_failed",
            "connection_disconnected",
            "connection_failed",
            "no_media_access",
            "no_connection",
            "multiple_rejoins",
        ]
    )
    assert Issue.objects.get(code="getusermedia_error").data == {
        "name": "NotAllowedError",
        "message": "Permission denied",
    }
    conference = Conference.objects.get(conference_id="room-9")
    assert not conference.ongoing and Summary.objects.filter(conference=conference).exists()


def test_remove_connection_and_remove_peer_with_app_level_peer_id(app, sdk, eager_celery):
    sdk.join(app.api_key, "room-7", "erin")
    _, first = sdk.post("connection", {"eventName": "addConnection", "peerId": "frank"})
    _, second = sdk.post("connection", {"eventName": "addConnection", "peerId": "gina"})
    assert sdk.post(
        "connection", {"eventName": "removeConnection", "connectionId": first["connection_id"], "peerId": "frank"}
    ) == (200, "")
    assert Connection.objects.get(pk=first["connection_id"]).end_time is not None
    assert Conference.objects.get(conference_id="room-7").ongoing
    assert sdk.post("connection", {"eventName": "removePeer", "peerId": "gina"}) == (200, "")
    assert Connection.objects.get(pk=second["connection_id"]).end_time is not None
    assert not Conference.objects.get(conference_id="room-7").ongoing
    # A closed peer connection ends it as well; a later addConnection reopens the conference.
    _, third = sdk.post("connection", {"eventName": "addConnection", "peerId": "frank"})
    assert Conference.objects.get(conference_id="room-7").ongoing
    sdk.post(
        "connection",
        {
            "eventName": "onconnectionstatechange",
            "peerId": third["peer_id"],
            "connectionId": third["connection_id"],
            "data": "closed",
        },
    )
    assert not Conference.objects.get(conference_id="room-7").ongoing


def test_out_of_order_state_events_do_not_regress(app, sdk):
    sdk.join(app.api_key, "room-8", "hana")
    _, ids = sdk.post("connection", {"eventName": "addConnection", "peerId": "ivan"})
    base = {"peerId": ids["peer_id"], "connectionId": ids["connection_id"], "eventName": "onconnectionstatechange"}
    for state in ("connected", "connecting", "new"):  # the SDK's concurrent posts, arriving late
        assert sdk.post("connection", {**base, "data": state}) == (200, "")
    connection = Connection.objects.get(pk=ids["connection_id"])
    assert connection.state == "connected" and connection.connection_info["established"]
    assert sdk.post("connection", {**base, "data": "disconnected"}) == (200, "")
    assert Connection.objects.get(pk=ids["connection_id"]).state == "disconnected"


def test_server_to_server_stop_conference_and_url(app, sdk, eager_celery):
    sdk.join(app.api_key, "room-s2s", "kim")
    _, ids = sdk.post("connection", {"eventName": "addConnection", "peerId": "lee"})
    assert (
        sdk.post("services/stop-conference", {"apiKey": app.api_key, "conferenceId": "nope"}, token=False)[1][
            "error_code"
        ]
        == "conference_not_found"
    )
    assert (
        sdk.post("services/stop-conference", {"apiKey": "0" * 32, "conferenceId": "room-s2s"}, token=False)[1][
            "error_code"
        ]
        == "invalid_api_key"
    )
    assert sdk.post("services/stop-conference", {"apiKey": app.api_key, "conferenceId": "room-s2s"}, token=False) == (
        200,
        {},
    )
    conference = Conference.objects.get(conference_id="room-s2s")
    assert not conference.ongoing and Summary.objects.filter(conference=conference).exists()
    body = {"peerId": ids["peer_id"], "connectionId": ids["connection_id"], "data": stats_payload(0)}
    assert sdk.post("stats", body)[1]["error_code"] == "connection_ended"
    status, answer = sdk.post("services/get-url", {"apiKey": app.api_key, "conferenceId": "room-s2s"}, token=False)
    assert status == 200 and answer["url"].endswith(f"/metrics/v1/dashboard#conference={conference.pk}")
