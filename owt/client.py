"""A small Python client for the OWT management API, with MAuth signing built in.

    from owt.client import ManagementClient

    api = ManagementClient("http://127.0.0.1:8000", service_id, service_key)
    room = api.create_room("myRoom", {"participantLimit": 10})
    token = api.create_token(room["_id"], user="alice", role="presenter")

Each call signs a fresh header (new timestamp and cnonce), so the server's replay
protection never refuses it. Errors raise :class:`OwtApiError` with the OWT code.
Pass ``http=httpx.Client(transport=...)`` to talk to an in-process app (the tests do).
"""

from __future__ import annotations

from typing import Any

import httpx

from owt.mauth import build_header


class OwtApiError(Exception):
    def __init__(self, status: int, code: int | None, message: str):
        self.status, self.code, self.message = status, code, message
        super().__init__(f"HTTP {status} (code {code}): {message}")


class ManagementClient:
    """One method per management route. ``user``/``role`` are signed into every header if given."""

    def __init__(
        self,
        base_url: str,
        service_id: str,
        key: str,
        *,
        user: str | None = None,
        role: str | None = None,
        version: str = "v1",
        http: httpx.Client | None = None,
        timeout: float = 10.0,
    ):
        self.service_id, self.key, self.user, self.role, self.version = service_id, key, user, role, version
        self.http = http or httpx.Client(timeout=timeout)
        self.base_url = base_url.rstrip("/")

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ManagementClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def authorization(self) -> str:
        return build_header(service_id=self.service_id, key=self.key, user=self.user, role=self.role)

    def request(self, method: str, path: str, *, json: Any = None, params: dict | None = None) -> Any:
        """Send a signed request; returns the decoded JSON, or the text of a text response."""
        response = self.http.request(
            method,
            f"{self.base_url}{path}",
            json=json,
            params={key: value for key, value in (params or {}).items() if value is not None},
            headers={"Authorization": self.authorization()},
        )
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
                raise OwtApiError(response.status_code, error.get("code"), error.get("message", ""))
            except (ValueError, KeyError, TypeError):
                raise OwtApiError(response.status_code, None, response.text) from None
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text

    # --- services (super service only, except reading one's own record) ---------------
    def list_services(self) -> list[dict]:
        return self.request("GET", "/services")

    def create_service(self, name: str, key: str) -> dict:
        return self.request("POST", "/services", json={"name": name, "key": key})

    def get_service(self, service_id: str) -> dict:
        return self.request("GET", f"/services/{service_id}")

    def delete_service(self, service_id: str) -> str:
        return self.request("DELETE", f"/services/{service_id}")

    # --- rooms ------------------------------------------------------------------------
    def list_rooms(self, *, page: int | None = None, per_page: int | None = None) -> list[dict]:
        return self.request("GET", f"/{self.version}/rooms", params={"page": page, "per_page": per_page})

    def create_room(self, name: str, options: dict | None = None) -> dict:
        body: dict[str, Any] = {"name": name}
        if options is not None:
            body["options"] = options
        return self.request("POST", f"/{self.version}/rooms", json=body)

    def get_room(self, room_id: str) -> dict:
        return self.request("GET", f"/{self.version}/rooms/{room_id}")

    def update_room(self, room_id: str, room: dict) -> dict:
        """PUT: each top-level key given replaces the stored one; others are kept."""
        return self.request("PUT", f"/{self.version}/rooms/{room_id}", json=room)

    def patch_room(self, room_id: str, patch: dict | list) -> dict:
        """PATCH: a dict is a JSON merge patch (nested objects merge, null resets a key to its
        default); a list is an RFC 6902 JSON Patch (``[{"op", "path", "value"}]``)."""
        return self.request("PATCH", f"/{self.version}/rooms/{room_id}", json=patch)

    def delete_room(self, room_id: str) -> str:
        return self.request("DELETE", f"/{self.version}/rooms/{room_id}")

    # --- tokens -----------------------------------------------------------------------
    def create_token(self, room_id: str, user: str, role: str, preference: dict | None = None) -> str:
        body: dict[str, Any] = {"user": user, "role": role}
        if preference is not None:
            body["preference"] = preference
        return self.request("POST", f"/{self.version}/rooms/{room_id}/tokens", json=body)


class EgressApiError(Exception):
    """An egress API error: ``{"error": "<text>", "request_id"?, "task_id"?}``."""

    def __init__(self, status: int, body: Any):
        self.status, self.body = status, body
        message = body.get("error") if isinstance(body, dict) else body
        super().__init__(f"HTTP {status}: {message}")


class EgressClient:
    """The egress API of one app (an OWT service: its id and key sign every request, MAuth)::

    egress = EgressClient("http://127.0.0.1:8000", SERVICE_ID, SERVICE_KEY)
    task = egress.start("rec1", {"layout": "flat", "channel": room_id, "format": "hls"})
    egress.status(task["task_id"])["status"]          # ENQUEUED, PROCESSING, … SUCCESS
    """

    def __init__(self, base_url: str, app_id: str, key: str, *, http: httpx.Client | None = None) -> None:
        self.signer = ManagementClient(base_url, app_id, key, http=http)
        self.app_id = app_id

    def request(self, method: str, path: str, *, json: Any = None, params: dict | None = None) -> Any:
        response = self.raw(method, path, json=json, params=params)
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else None
        if response.status_code >= 400:
            raise EgressApiError(response.status_code, body if body is not None else response.text)
        return body if body is not None else response.content

    def raw(self, method: str, path: str, *, json: Any = None, params: dict | None = None) -> httpx.Response:
        """A signed request under ``/egress/v1/<app>``, the response as it came."""
        signer = self.signer
        return signer.http.request(
            method,
            f"{signer.base_url}/egress/v1/{self.app_id}{path}",
            json=json,
            params=params,
            headers={"Authorization": signer.authorization()},
        )

    def start(self, request_id: str, payload: dict, cmd: str = "record") -> dict:
        return self.request("POST", "/tasks", json={"request_id": request_id, "cmd": cmd, "payload": payload})

    def status(self, task_id: str) -> dict:
        return self.request("GET", f"/tasks/{task_id}")

    def stop(self, task_id: str, request_id: str | None = None) -> dict:
        return self.request("POST", f"/tasks/{task_id}/stop", json={"request_id": request_id} if request_id else {})

    def tasks(self, **filters: str) -> list[dict]:
        return self.request("GET", "/tasks", params=filters)

    def files(self, task_id: str) -> list[dict]:
        return self.request("GET", f"/tasks/{task_id}/files")

    def download(self, task_id: str, name: str) -> bytes:
        return self.request("GET", f"/tasks/{task_id}/files/{name}")

    def set_webhook(self, url: str, secret: str | None = None) -> dict:
        return self.request("PUT", "/webhook", json={"url": url, **({"secret": secret} if secret else {})})
