"""Per-API-key rate limits: 429 with Retry-After and RateLimit-* headers, overrides, exact across processes."""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid

import pytest
import redis
from django.test import Client

from tenants import ratelimit
from tenants.models import ApiKey, RateLimitCounter, Role
from tenants.services import create_api_key
from tests.support.api import bearer_client

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/7")


def redis_cache_settings() -> dict:
    return {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}


def redis_available() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture
def require_redis():
    if not redis_available():
        if os.environ.get("CI"):
            pytest.fail(f"Redis is required in CI for the cross-process rate-limit test ({REDIS_URL})")
        pytest.skip(f"no Redis at {REDIS_URL}")


@pytest.fixture(autouse=True)
def _one_window(monkeypatch):
    """Every request of a test in one window, a known distance from its end."""
    now = (time.time() // 3600) * 3600 + 15
    monkeypatch.setattr(ratelimit, "_now", lambda: now)


@pytest.fixture
def key_client(tenant):
    def make(rate_limit: str = "", role: str = Role.VIEWER):
        key, raw = create_api_key(tenant, name="limited", role=role, rate_limit=rate_limit)
        client = bearer_client(raw)
        client.key = key
        return client

    return make


def test_over_the_default_limit_answers_429_with_retry_after(key_client, settings):
    settings.API_RATE_LIMIT = "3/60"
    client = key_client()
    answers = [client.get("/api/v1/agents") for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a["RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert {a["RateLimit-Limit"] for a in answers} == {"3"}
    assert {a["RateLimit-Policy"] for a in answers} == {"3;w=60"}
    assert {a["RateLimit-Reset"] for a in answers} == {"45"}  # the window started 15 s ago
    limited = answers[-1]
    assert limited.json() == {"error": "Rate limit exceeded"}
    assert limited["Retry-After"] == "45"


def test_the_call_api_is_limited_too_and_keys_count_apart(key_client, settings):
    settings.API_RATE_LIMIT = "1/60"
    first, second = key_client(), key_client()
    assert first.get("/integration/v1/agents").status_code == 200
    assert first.get("/integration/v1/agents").status_code == 429
    assert second.get("/integration/v1/agents").status_code == 200


def test_a_key_override_replaces_the_default(key_client, settings):
    settings.API_RATE_LIMIT = "1/60"
    client = key_client(rate_limit="5/10")
    answers = [client.get("/api/v1/agents") for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    assert answers[0]["RateLimit-Limit"] == "5" and answers[0]["RateLimit-Reset"] == "5"


def test_unauthenticated_and_session_requests_carry_no_rate_limit_headers(client, db, settings):
    settings.API_RATE_LIMIT = "1/60"
    anonymous = client.get("/api/v1/agents")
    assert anonymous.status_code == 401 and "RateLimit-Limit" not in anonymous


def test_owner_sets_and_clears_an_override_over_rest(owner_client, key_client, viewer):
    limited = key_client()
    path = f"/api/v1/api-keys/{limited.key.pk}"

    changed = owner_client.patch(path, {"rate_limit": "1200/60", "name": "batch job"}, format="json")
    assert changed.status_code == 200, changed.content
    assert (changed.json()["rate_limit"], changed.json()["name"]) == ("1200/60", "batch job")
    assert limited.get("/api/v1/agents")["RateLimit-Limit"] == "1200"

    refused = owner_client.patch(path, {"rate_limit": "fast"}, format="json")
    assert refused.status_code == 400
    assert refused.json()["details"]["rate_limit"] == ["A rate limit looks like 600/60 (requests/seconds), not 'fast'"]
    assert owner_client.patch(path, {"rate_limit": "0/60"}, format="json").status_code == 400
    assert owner_client.patch(path, {"role": "owner"}, format="json").status_code == 400  # read-only on PATCH
    assert viewer.patch(path, {"rate_limit": "1/1"}, format="json").status_code == 403

    assert owner_client.patch(path, {"rate_limit": ""}, format="json").json()["rate_limit"] == ""
    assert ApiKey.objects.get(pk=limited.key.pk).role == Role.VIEWER


def test_create_with_an_override(owner_client):
    created = owner_client.post(
        "/api/v1/api-keys", {"name": "bulk", "role": "member", "rate_limit": "50/1"}, format="json"
    )
    assert created.status_code == 201, created.content
    assert created.json()["rate_limit"] == "50/1"
    assert bearer_client(created.json()["key"]).get("/api/v1/agents")["RateLimit-Limit"] == "50"


def test_owner_sets_an_override_in_the_admin(tenant, make_staff_user, key_client):
    limited = key_client()
    make_staff_user("olga", tenant, role=Role.OWNER)
    browser = Client()
    browser.login(username="olga", password="pw-for-tests-1")
    url = f"/admin/tenants/apikey/{limited.key.pk}/change/"
    form = {"name": "limited", "role": "viewer", "rate_limit": "ten per minute"}

    refused = browser.post(url, form)
    assert refused.status_code == 200 and "A rate limit looks like 600/60" in refused.content.decode()
    assert browser.post(url, {**form, "rate_limit": "10/60"}).status_code == 302
    assert ApiKey.objects.get(pk=limited.key.pk).rate_limit == "10/60"


def test_database_counters_expire_and_are_purged(key_client, settings, monkeypatch):
    settings.API_RATE_LIMIT = "5/60"
    key_client().get("/api/v1/agents")
    assert RateLimitCounter.objects.count() == 1
    assert ratelimit.purge_expired() == 0
    later = ratelimit._now() + 120
    monkeypatch.setattr(ratelimit, "_now", lambda: later)
    assert ratelimit.purge_expired() == 1


def test_redis_counts_in_process(key_client, settings, require_redis):
    settings.CACHES = redis_cache_settings()
    settings.API_RATE_LIMIT = "2/60"
    client = key_client()
    assert [client.get("/api/v1/agents").status_code for _ in range(3)] == [200, 200, 429]
    assert RateLimitCounter.objects.count() == 0  # Redis held the count, not the table


def test_a_redis_counter_lives_as_long_as_its_window(settings, require_redis):
    # given Redis as the shared cache, 15 s into a 60 s window (the _one_window fixture)
    settings.CACHES = redis_cache_settings()
    identity, limit = f"ttl-{uuid.uuid4()}", ratelimit.Limit(5, 60)
    # when one identity is counted twice
    remaining = [ratelimit.check("test-ttl", identity, limit).remaining for _ in range(2)]
    # then both hits count, on one key that expires 1 s after the window ends (45 s + 1 s from now)
    assert remaining == [4, 3]
    from django.core.cache import caches

    digest = hashlib.sha256(identity.encode()).hexdigest()[:32]
    window = int(ratelimit._now() // 60)
    key = caches["default"].make_and_validate_key(f"rl:test-ttl:{digest}:60:{window}")
    assert 40 <= redis.Redis.from_url(REDIS_URL).ttl(key) <= 46


def test_redis_counting_survives_the_server_forgetting_the_script(settings, require_redis):
    # given a counter already counted once through the registered script
    settings.CACHES = redis_cache_settings()
    identity, limit = f"noscript-{uuid.uuid4()}", ratelimit.Limit(5, 60)
    assert ratelimit.check("test-noscript", identity, limit).remaining == 4
    # when the server no longer knows the script (a restart, SCRIPT FLUSH): here, a hash it never saw
    from django.core.cache import caches

    ratelimit._counters[caches["default"]._cache].sha = "0" * 40
    # then the next hit loads the script again and still counts exactly
    assert ratelimit.check("test-noscript", identity, limit).remaining == 3


def test_redis_counting_survives_its_connection_being_closed(settings, require_redis):
    # given a counter counted once on the thread's own connection
    settings.CACHES = redis_cache_settings()
    identity, limit = f"reconnect-{uuid.uuid4()}", ratelimit.Limit(5, 60)
    assert ratelimit.check("test-reconnect", identity, limit).remaining == 4
    # when the server closes that connection (a restart, a timeout, CLIENT KILL)
    server = redis.Redis.from_url(REDIS_URL)
    ours = [c for c in server.client_list() if c["cmd"] == "evalsha" and c["id"] != str(server.client_id())]
    assert ours and all(server.client_kill_filter(_id=c["id"]) == 1 for c in ours)
    # then the next hit reconnects and still counts exactly, once
    assert ratelimit.check("test-reconnect", identity, limit).remaining == 3
    assert ratelimit.check("test-reconnect", identity, limit).remaining == 2


def test_a_redis_error_reply_raises_and_leaves_the_connection_in_step(settings, require_redis):
    # given a window's counter key that holds text, not a count (written by something else)
    settings.CACHES = redis_cache_settings()
    from django.core.cache import caches

    identity, limit = f"garbled-{uuid.uuid4()}", ratelimit.Limit(5, 60)
    digest = hashlib.sha256(identity.encode()).hexdigest()[:32]
    window = int(ratelimit._now() // 60)
    key = caches["default"].make_and_validate_key(f"rl:test-garbled:{digest}:60:{window}")
    redis.Redis.from_url(REDIS_URL).set(key, "not a number", ex=60)
    # when it is counted, the server's error is raised
    with pytest.raises(redis.ResponseError, match="not an integer"):
        ratelimit.check("test-garbled", identity, limit)
    # then the same connection still pairs each command with its own reply
    other = f"fine-{uuid.uuid4()}"
    assert [ratelimit.check("test-garbled", other, limit).remaining for _ in range(2)] == [4, 3]


def test_a_forked_child_counts_on_a_connection_of_its_own(settings, require_redis):
    # given a counter counted once on this thread's connection
    settings.CACHES = redis_cache_settings()
    from django.core.cache import caches

    identity, limit = f"fork-{uuid.uuid4()}", ratelimit.Limit(5, 60)
    assert ratelimit.check("test-fork", identity, limit).remaining == 4
    parents = ratelimit._counters[caches["default"]._cache]
    # when a forked child counts (it inherits the connection's socket along with the memory)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover — the child's own lines run outside the parent's coverage
        try:
            remaining = ratelimit.check("test-fork", identity, limit).remaining
            own = ratelimit._counters[caches["default"]._cache] is not parents
            os.write(write, json.dumps([remaining, own]).encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    with os.fdopen(read) as answer:
        remaining, own = json.loads(answer.read())
    # then it counted exactly, on a connection it opened itself, and the parent's still answers in step
    assert (remaining, own) == (3, True)
    assert ratelimit.check("test-fork", identity, limit).remaining == 2
    assert ratelimit._counters[caches["default"]._cache] is parents


CROSS_PROCESS = """
from django.test.utils import setup_test_environment
from tests.support.api import bearer_client
setup_test_environment()  # the test client's host name is allowed
while time.time() < START_AT:
    time.sleep(0.005)
client = bearer_client({raw_key!r})
print(json.dumps([client.get("/api/v1/agents").status_code for _ in range(40)]))
"""


def _two_processes_share_one_limit(tenant, monkeypatch, cache_env: dict[str, str]) -> list[int]:
    from tests.support.concurrency import run_processes

    for name, value in cache_env.items():
        monkeypatch.setenv(name, value)
    # A fresh window of a day, so the two processes' 80 requests never straddle a reset.
    monkeypatch.setenv("API_RATE_LIMIT", "1000000/60")
    _, raw_key = create_api_key(tenant, name="shared", role=Role.VIEWER, rate_limit="50/86400")
    outputs = run_processes(2, CROSS_PROCESS.format(raw_key=raw_key), start_at=time.time() + 6)
    statuses = [status for statuses in outputs for status in statuses]
    assert set(statuses) <= {200, 429}, statuses
    return statuses


def test_two_processes_share_one_exact_limit_in_redis(transactional_db, tenant, monkeypatch, require_redis):
    statuses = _two_processes_share_one_limit(tenant, monkeypatch, {"REDIS_URL": REDIS_URL})
    assert (statuses.count(200), statuses.count(429)) == (50, 30)


def test_two_processes_share_one_exact_limit_in_the_database(transactional_db, tenant, monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    statuses = _two_processes_share_one_limit(tenant, monkeypatch, {})
    assert (statuses.count(200), statuses.count(429)) == (50, 30)


def test_owner_creates_a_key_with_an_override_in_the_admin(tenant, make_staff_user):
    make_staff_user("otto", tenant, role=Role.OWNER)
    browser = Client()
    browser.login(username="otto", password="pw-for-tests-1")
    form = {"name": "nightly export", "role": "viewer", "rate_limit": "6000/60"}

    assert (
        "A rate limit looks like"
        in browser.post("/admin/tenants/apikey/add/", {**form, "rate_limit": "x"}).content.decode()
    )
    created = browser.post("/admin/tenants/apikey/add/", form)

    key = ApiKey.objects.get(name="nightly export")
    assert key.rate_limit == "6000/60"
    raw_key = created.content.decode().split('id="raw-api-key"')[1].split(">", 1)[1].split("<", 1)[0]
    assert bearer_client(raw_key).get("/api/v1/agents")["RateLimit-Limit"] == "6000"
