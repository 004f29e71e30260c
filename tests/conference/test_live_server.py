"""End to end on a real socket: migrate, `owt_bootstrap`, daphne, then the client as a user would."""

import pytest

from owt.client import ManagementClient, OwtApiError
from owt.localserver import manage, portal_env, running_portal

pytestmark = pytest.mark.embedded


@pytest.fixture
def server(tmp_path):
    env = portal_env(tmp_path)
    manage(env, "migrate", "--noinput", "-v0")
    printed = manage(env, "owt_bootstrap")
    lines = dict(line.split(": ", 1) for line in printed.splitlines())
    assert manage(env, "owt_bootstrap") == printed  # idempotent
    with running_portal(env, migrate=False) as portal:
        yield portal.url, lines["OWT super service id"], lines["OWT super service key"]


def test_round_trip_over_daphne(server):
    base, super_id, super_key = server
    with ManagementClient(base, super_id, super_key) as admin:
        created = admin.create_service("app", "app-key")
        with ManagementClient(base, created["_id"], "app-key", version="v1.1") as api:
            room = api.create_room("live", {"views": [{"video": {"maxInput": 4}}]})
            assert api.list_rooms(per_page=1)[0]["_id"] == room["_id"]
            assert api.patch_room(room["_id"], {"participantLimit": 3})["participantLimit"] == 3
            token = api.create_token(room["_id"], "alice", "presenter")
            assert isinstance(token, str) and len(token) > 100
            with pytest.raises(OwtApiError) as info:
                admin.get_room(room["_id"])
            assert info.value.code == 1003
            assert api.delete_room(room["_id"]) == "Room deleted"
        assert admin.delete_service(created["_id"]) == "Service deleted"
