"""Token issue/consume: signature, single use, expiry."""

import base64
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from streamengine import services
from streamengine.exceptions import InvalidToken, InvalidTokenRequest, TokenAlreadyUsed, TokenExpired
from streamengine.models import Token
from streamengine.tokens import TokenString

ROLES = {"roles": [{"role": "presenter", "publish": {"audio": True, "video": True}}]}


@pytest.fixture
def domain(db):
    return services.domain_configure(domain_id="a" * 24, owner="svc", config=ROLES)


def test_token_shape_and_key_order(domain):
    text = services.token_create(domain_id=domain.id, user="u1", role="presenter", host="h:1", secure=True)
    raw = base64.b64decode(text).decode()
    assert list(json.loads(raw)) == ["tokenId", "host", "secure", "signature"]
    assert " " not in raw
    assert json.loads(raw)["host"] == "h:1"


def test_consume_once(domain):
    text = services.token_create(domain_id=domain.id, user="u1", role="presenter")
    token = services.token_consume(token_string=text)
    assert (token.user, token.role, token.domain_id) == ("u1", "presenter", domain.id)
    with pytest.raises(TokenAlreadyUsed):
        services.token_consume(token_string=text)


def test_forged_and_garbage_tokens(domain):
    text = services.token_create(domain_id=domain.id, user="u1", role="presenter")
    parsed = TokenString.decode(text)
    forged = TokenString(parsed.token_id, "evil:1", parsed.secure, parsed.signature).encode()
    with pytest.raises(InvalidToken):
        services.token_consume(token_string=forged)
    with pytest.raises(InvalidToken):
        services.token_consume(token_string="not base64 !")


def test_expired(domain):
    text = services.token_create(domain_id=domain.id, user="u1", role="presenter")
    Token.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(TokenExpired):
        services.token_consume(token_string=text)
    assert not Token.objects.exists()


def test_beat_job_purges_expired_tokens(domain):
    from streamengine.tasks import purge_expired_tokens

    services.token_create(domain_id=domain.id, user="u1", role="presenter")
    services.token_create(domain_id=domain.id, user="u2", role="presenter")
    Token.objects.filter(user="u1").update(expires_at=timezone.now() - timedelta(seconds=1))
    assert purge_expired_tokens() == 1
    assert list(Token.objects.values_list("user", flat=True)) == ["u2"]


def test_unknown_role(domain):
    with pytest.raises(InvalidTokenRequest):
        services.token_create(domain_id=domain.id, user="u1", role="nobody")


@pytest.mark.django_db(transaction=True)
def test_concurrent_consume_exactly_one_wins():
    services.domain_configure(domain_id="b" * 24, owner="svc", config=ROLES)
    text = services.token_create(domain_id="b" * 24, user="u1", role="presenter")

    def attempt(_):
        try:
            services.token_consume(token_string=text)
            return "ok"
        except TokenAlreadyUsed:
            return "used"
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, range(8)))
    assert outcomes.count("ok") == 1
    assert outcomes.count("used") == 7
