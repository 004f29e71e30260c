"""Secrets and keys: no forgery with the public development key, HKDF per purpose, rotation
through SECRET_KEY_FALLBACKS (old data decrypts, old tokens verify, re-encryption), and the
checks that stop a production start on the development key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import logging
import os
import signal
import stat
import subprocess
import sys
import time

import jwt
import pytest
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from conference.models import Room, Service
from conference.services import room_create, service_create
from metrics import tokens as metrics_tokens
from metrics.errors import PeermetricsError
from owt import crypto, keys, mauth
from owt.checks import check_secret_key, refuse_insecure_start
from owt.localserver import ROOT, free_port, portal_env
from owt.secret_key import DEVELOPMENT_SECRET_KEY, create_file, read_file
from streamengine import services as engine
from streamengine.exceptions import InvalidToken as InvalidRoomToken
from streamengine.models import Domain
from streamengine.tokens import TokenString

OLD_KEY = "old-production-key-" + "o" * 40
NEW_KEY = "new-production-key-" + "n" * 40
ROLES = {"roles": [{"role": "presenter", "publish": {"audio": True, "video": True}}]}


def hkdf(secret: str, purpose: str) -> bytes:
    """RFC 5869 HKDF-SHA256 as the docs describe it: other implementations must agree with it."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"owt-media-platform/v1", info=purpose.encode()).derive(
        secret.encode()
    )


def legacy_fernet(secret: str) -> Fernet:
    """How owt.crypto derived its key before HKDF (data stored by earlier versions)."""
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"owt.conference.secrets" + secret.encode()).digest()))


def mauth_get_rooms(api_client, service_id: str, key: str):
    return api_client.get("/v1/rooms", HTTP_AUTHORIZATION=mauth.build_header(service_id=service_id, key=key))


# --- derivation ----------------------------------------------------------------------------


PURPOSES = ["owt-room-token", "owt-service-key-encryption", "peermetrics-init-jwt", "peermetrics-session-jwt"]


def test_each_purpose_has_its_own_hkdf_key():
    derived = [keys.derive(NEW_KEY, purpose) for purpose in PURPOSES]
    assert derived == [hkdf(NEW_KEY, purpose) for purpose in PURPOSES]
    assert len(set(derived)) == len(PURPOSES)
    assert not set(derived) & {keys.derive(OLD_KEY, purpose) for purpose in PURPOSES}


@override_settings(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[])
def test_new_secrets_are_written_under_the_hkdf_key():
    token = crypto.encrypt("plain")
    assert Fernet(base64.urlsafe_b64encode(hkdf(NEW_KEY, "owt-service-key-encryption"))).decrypt(token.encode()) == (
        b"plain"
    )
    with pytest.raises(InvalidToken):
        legacy_fernet(NEW_KEY).decrypt(token.encode())


# --- forgery with the public development key ------------------------------------------------


@pytest.fixture
def domain(db):
    return engine.domain_configure(domain_id="d" * 24, owner="svc", config=ROLES)


@override_settings(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[])
def test_room_token_forged_with_the_development_key_is_refused(domain):
    genuine = TokenString.decode(engine.token_create(domain_id=domain.id, user="u", role="presenter"))
    forged_keys = [
        keys.derive(DEVELOPMENT_SECRET_KEY, "owt-room-token"),
        # the derivation before HKDF
        hmac.new(DEVELOPMENT_SECRET_KEY.encode(), b"owt.streamengine.token-key", hashlib.sha256).digest(),
    ]
    for key in forged_keys:
        digest = hmac.new(key, f"{genuine.token_id},{genuine.host}".encode(), hashlib.sha256).hexdigest()
        forged = TokenString(genuine.token_id, genuine.host, genuine.secure, base64.b64encode(digest.encode()).decode())
        with pytest.raises(InvalidRoomToken):
            engine.token_consume(token_string=forged.encode())
    assert engine.token_consume(token_string=genuine.encode()).user == "u"


@override_settings(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[])
def test_peermetrics_session_jwt_forged_with_the_development_key_is_refused():
    now = int(time.time())
    claims = {"s": "1", "typ": "session", "t": now, "iat": now, "exp": now + 60}
    forged_keys = [
        keys.derive(DEVELOPMENT_SECRET_KEY, "peermetrics-session-jwt"),
        hmac.new(DEVELOPMENT_SECRET_KEY.encode(), b"metrics.session-token", hashlib.sha256).digest(),
    ]
    for key in forged_keys:
        with pytest.raises(PeermetricsError) as info:
            metrics_tokens.verify("session", jwt.encode(claims, key, algorithm="HS256"), ("s",))
        assert info.value.code == "invalid_token"
    assert (
        metrics_tokens.verify("session", metrics_tokens.session_token(session_id="1", key_generation=0), ("s",))["s"]
        == "1"
    )


@override_settings(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[])
def test_stored_service_key_cannot_be_decrypted_with_the_development_key(db):
    service = service_create(name="tenant", key="tenant-key")
    stored = Service.objects.get(id=service.id).key_encrypted.encode()
    for fernet in (
        Fernet(base64.urlsafe_b64encode(keys.derive(DEVELOPMENT_SECRET_KEY, "owt-service-key-encryption"))),
        legacy_fernet(DEVELOPMENT_SECRET_KEY),
    ):
        with pytest.raises(InvalidToken):
            fernet.decrypt(stored)


# --- rotation -------------------------------------------------------------------------------


@pytest.fixture
def service_under_old_key(db):
    with override_settings(SECRET_KEY=OLD_KEY, SECRET_KEY_FALLBACKS=[]):
        return service_create(name="tenant", key="tenant-key")


def test_mauth_with_a_key_stored_under_a_fallback_is_200(api_client, service_under_old_key):
    with override_settings(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[OLD_KEY]):
        assert mauth_get_rooms(api_client, service_under_old_key.id, "tenant-key").status_code == 200


def test_mauth_with_a_key_no_configured_secret_decrypts_is_401_and_logged(api_client, service_under_old_key, caplog):
    with override_settings(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[]), caplog.at_level(logging.ERROR):
        response = mauth_get_rooms(api_client, service_under_old_key.id, "tenant-key")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == 1101
    assert "cannot read the service's key" in response.json()["error"]["message"]
    assert any(service_under_old_key.id in record.getMessage() for record in caplog.records)


def test_data_encrypted_the_legacy_way_still_decrypts(db):
    legacy = legacy_fernet(OLD_KEY).encrypt(b"legacy-key").decode()
    with override_settings(SECRET_KEY=OLD_KEY, SECRET_KEY_FALLBACKS=[]):
        assert crypto.decrypt(legacy) == "legacy-key"
    with override_settings(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[OLD_KEY]):
        assert crypto.decrypt(legacy) == "legacy-key"
    with override_settings(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[]), pytest.raises(crypto.UndecryptableSecret):
        crypto.decrypt(legacy)


def test_reencrypt_command_moves_every_stored_secret_to_the_current_key(api_client, db):
    sip = {"sipServer": "sip.example.org", "username": "u", "password": "sip-secret"}
    with override_settings(SECRET_KEY=OLD_KEY, SECRET_KEY_FALLBACKS=[]):
        service = service_create(name="tenant", key="tenant-key")
        room = room_create(service=service, name="r", options={"sip": sip})
    # A service stored by an earlier version (the legacy derivation), too.
    Service.objects.create(name="legacy", key_encrypted=legacy_fernet(OLD_KEY).encrypt(b"legacy-key").decode())

    with override_settings(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[OLD_KEY]):
        out = io.StringIO()
        call_command("owt_reencrypt_secrets", stdout=out)
    assert "re-encrypted 3 stored secrets" in out.getvalue()

    new_only = Fernet(base64.urlsafe_b64encode(hkdf(NEW_KEY, "owt-service-key-encryption")))
    assert {new_only.decrypt(s.key_encrypted.encode()) for s in Service.objects.all()} == {b"tenant-key", b"legacy-key"}
    stored_room = Room.objects.get(id=room.id).config["sip"]["password"]["encrypted"]
    assert new_only.decrypt(stored_room.encode()) == b"sip-secret"
    # The engine's copy of the room (read by the SIP jobs) moved with it, still encrypted.
    engine_copy = Domain.objects.get(id=room.id).config["sip"]["password"]["encrypted"]
    assert new_only.decrypt(engine_copy.encode()) == b"sip-secret"
    with override_settings(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[]):
        assert mauth_get_rooms(api_client, service.id, "tenant-key").status_code == 200


def test_reencrypt_writes_nothing_when_a_secret_is_unreadable(service_under_old_key):
    stranger = Service.objects.create(name="stranger", key_encrypted=legacy_fernet("lost").encrypt(b"x").decode())
    before = Service.objects.get(id=service_under_old_key.id).key_encrypted
    with (
        override_settings(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[OLD_KEY]),
        pytest.raises(CommandError, match=f"service {stranger.id}"),
    ):
        call_command("owt_reencrypt_secrets")
    assert Service.objects.get(id=service_under_old_key.id).key_encrypted == before


def test_room_token_signed_before_a_rotation_verifies_through_the_fallback(domain):
    with override_settings(SECRET_KEY=OLD_KEY, SECRET_KEY_FALLBACKS=[]):
        kept = engine.token_create(domain_id=domain.id, user="kept", role="presenter")
        dropped = engine.token_create(domain_id=domain.id, user="dropped", role="presenter")
    with override_settings(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[OLD_KEY]):
        assert engine.token_consume(token_string=kept).user == "kept"
    with override_settings(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[]), pytest.raises(InvalidRoomToken):
        engine.token_consume(token_string=dropped)


def test_peermetrics_jwt_signed_before_a_rotation_verifies_through_the_fallback():
    with override_settings(SECRET_KEY=OLD_KEY, SECRET_KEY_FALLBACKS=[]):
        token = metrics_tokens.session_token(session_id="7", key_generation=0)
    with override_settings(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[OLD_KEY]):
        assert metrics_tokens.verify("session", token, ("s",))["s"] == "7"
    with override_settings(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[]), pytest.raises(PeermetricsError):
        metrics_tokens.verify("session", token, ("s",))


# --- the checks -----------------------------------------------------------------------------


def test_production_on_the_development_key_is_a_check_error():
    with override_settings(OWT_ENV="production", SECRET_KEY=DEVELOPMENT_SECRET_KEY):
        with pytest.raises(SystemCheckError, match="owt.E001"):
            call_command("check", "--deploy")
        with pytest.raises(ImproperlyConfigured, match="owt.E001"):
            refuse_insecure_start()
    with override_settings(OWT_ENV="production", SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[DEVELOPMENT_SECRET_KEY]):
        assert [message.id for message in check_secret_key()] == ["owt.E001"]
    with override_settings(OWT_ENV="production", SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[OLD_KEY]):
        assert check_secret_key() == []
        refuse_insecure_start()


def test_embedded_on_the_development_key_warns_and_a_mistyped_env_is_an_error(caplog):
    with override_settings(OWT_ENV="embedded", SECRET_KEY=DEVELOPMENT_SECRET_KEY), caplog.at_level(logging.WARNING):
        assert [message.id for message in check_secret_key()] == ["owt.W001"]
        refuse_insecure_start()
    assert any("owt.W001" in record.getMessage() for record in caplog.records)
    with override_settings(OWT_ENV="prod", SECRET_KEY=NEW_KEY):
        assert [message.id for message in check_secret_key()] == ["owt.E002"]


# --- the embedded key file and the production settings, in real processes ---------------------


def run_python(env: dict, code: str) -> str:
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True
    )
    return completed.stdout


@pytest.mark.embedded
def test_key_file_is_private_never_replaced_and_read_by_the_settings(tmp_path):
    path = tmp_path / "var" / "secret_key"
    key = create_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(key) >= 50
    with pytest.raises(FileExistsError):
        create_file(path)
    assert read_file(path) == key and read_file(tmp_path / "missing") == ""
    env = portal_env(tmp_path / "var")
    env.pop("SECRET_KEY", None)
    read = "import django; django.setup(); from django.conf import settings; print(settings.SECRET_KEY)"
    assert run_python(env, read).strip() == key


@pytest.mark.embedded
def test_first_embedded_start_generates_the_key_and_encrypts_under_it(tmp_path):
    env = {**portal_env(tmp_path), "PYTHONUNBUFFERED": "1"}
    env.pop("SECRET_KEY", None)
    command = [sys.executable, "manage.py", "runplatform", "--no-worker", "--no-beat", "--port", str(free_port())]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    lines = []
    try:
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        process.send_signal(signal.SIGINT)  # as Ctrl-C: runplatform stops its children
        process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)  # the group this test started, on failure only
    output = "".join(lines)
    assert "generated SECRET_KEY" in output and "owt.W001" not in output
    key = read_file(tmp_path / "secret_key")
    super_key = next(line.split(": ", 1)[1].strip() for line in lines if line.startswith("OWT super service key"))
    stored = run_python(
        env,
        "import django; django.setup(); from conference.models import Service; "
        "print(Service.objects.get(is_super=True).key_encrypted)",
    ).strip()
    assert Fernet(base64.urlsafe_b64encode(hkdf(key, "owt-service-key-encryption"))).decrypt(stored.encode()) == (
        super_key.encode()
    )


PRODUCTION = {"OWT_ENV": "production", "OWT_TLS": "1", "SECRET_KEY": NEW_KEY, "ALLOWED_HOSTS": "owt.example.org"}


@pytest.mark.embedded
def test_production_with_tls_passes_check_deploy(tmp_path):
    completed = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT, env=portal_env(tmp_path, **PRODUCTION), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert "no issues" in completed.stdout


@pytest.mark.embedded
def test_tls_headers_cookies_and_csp(tmp_path):
    code = """
import json, django
django.setup()
from django.conf import settings
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
c = Client(HTTP_HOST="owt.example.org")
plain = c.get("/admin/login/")
health = c.get("/health/")
login = c.get("/admin/login/", secure=True)
forwarded = c.get("/admin/login/", HTTP_X_FORWARDED_PROTO="https")
from django.contrib.auth import get_user_model
c.force_login(get_user_model().objects.create_superuser("staff", "staff@localhost", "pw"))
dashboard = c.get("/metrics/v1/dashboard", secure=True)
print(json.dumps({
    "plain": [plain.status_code, plain.get("Location")],
    "health": health.status_code,
    "hsts": login.get("Strict-Transport-Security"),
    "csp": login.get("Content-Security-Policy"),
    "cookie": login.cookies["csrftoken"].output(),
    "forwarded": forwarded.status_code,
    "dashboard_csp": dashboard.get("Content-Security-Policy"),
    "dashboard": dashboard.content.decode(),
    "room_tokens_secure": settings.OWT_PORTAL_SECURE,
}))
"""
    env = portal_env(tmp_path, **PRODUCTION)
    run_python(env, "import django; django.setup(); from django.core.management import call_command; "
               "call_command('migrate', verbosity=0)")  # fmt: skip
    seen = json.loads(run_python(env, code))
    assert seen["plain"] == [301, "https://owt.example.org/admin/login/"]
    assert seen["health"] != 301
    assert seen["forwarded"] == 200  # TLS ended at the proxy
    assert seen["hsts"] == "max-age=31536000; includeSubDomains; preload"
    assert "default-src 'self'" in seen["csp"] and "frame-ancestors 'none'" in seen["csp"]
    assert "'unsafe-inline'" not in seen["csp"].split("script-src")[1].split(";")[0]
    cookie = seen["cookie"].lower()
    assert "secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    nonce = seen["dashboard_csp"].split("'nonce-")[1].split("'")[0]
    assert f'<script nonce="{nonce}">' in seen["dashboard"]
    assert seen["room_tokens_secure"] is True
