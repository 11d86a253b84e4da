"""Rate limits shared through Redis across hosts, and intake that survives Redis going away."""

from __future__ import annotations

import os
import uuid

import pytest
import redis

REDIS_URL = os.environ.get("MODERATION_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_url():
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs Redis at {REDIS_URL}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}")
    return REDIS_URL


def test_two_hosts_share_one_limit_through_redis(make_api, redis_url):
    author = {"email": f"{uuid.uuid4().hex}@example.org"}  # a fresh counter for every run
    host_a = make_api(RATE_LIMIT="3 per day", RATELIMIT_STORAGE_URI=redis_url)
    host_b = make_api(RATE_LIMIT="3 per day", RATELIMIT_STORAGE_URI=redis_url)
    codes = [host.post_comment(f"comment {i}", author=author).status_code for i, host in enumerate([host_a, host_b, host_a, host_b])]
    assert codes == [201, 201, 201, 429]


def test_intake_continues_when_redis_is_gone(make_api):
    api = make_api(RATE_LIMIT="3 per day", RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0")
    assert api.post_comment("still accepted", author={"email": "x@example.org"}).status_code == 201


def test_a_refused_comment_counts_against_nothing(make_api):
    """Both counters are checked before either is counted: a comment refused for its address
    does not use up its author's allowance (nor the other way round)."""
    api = make_api(RATE_LIMIT="1 per day")
    assert api.post_comment("first", author={"email": "a@example.org", "ip": "198.51.100.1"}).status_code == 201
    assert api.post_comment("same address", author={"email": "b@example.org", "ip": "198.51.100.1"}).status_code == 429
    assert api.post_comment("b elsewhere", author={"email": "b@example.org", "ip": "198.51.100.2"}).status_code == 201


def test_headers_count_down_and_a_refusal_says_when_to_retry(make_api):
    api = make_api(RATE_LIMIT="3 per day")
    author = {"email": f"{uuid.uuid4().hex}@example.org"}
    answers = [api.post_comment(f"comment {i}", author=author) for i in range(4)]
    assert [a.status_code for a in answers] == [201, 201, 201, 429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert all(a.headers["X-RateLimit-Limit"] == "3" for a in answers)
    assert all("Retry-After" not in a.headers for a in answers[:3])
    assert 0 < int(answers[3].headers["Retry-After"]) <= 2 * 86400
    assert answers[3].get_json()["error"]["message"].startswith("too many comments from this author or address (limit: 3 per 1 day)")


def test_an_anonymous_comment_is_not_limited(make_api):
    api = make_api(RATE_LIMIT="1 per day")
    answers = [api.post_comment(f"anonymous {i}") for i in range(3)]
    assert [a.status_code for a in answers] == [201, 201, 201]
    assert "X-RateLimit-Remaining" not in answers[0].headers


def test_an_unknown_key_uses_up_no_allowance(make_api):
    """The key is checked before the limit: requests without a valid key count against nobody."""
    api = make_api(RATE_LIMIT="1 per day")
    body = {"text": "x", "author": {"email": "victim@example.org"}}
    assert api.client.post("/api/v1/comments", json=body, headers={"Authorization": "Bearer cm_s_wrong"}).status_code == 401
    assert api.post_comment("mine", author={"email": "victim@example.org"}).status_code == 201


def test_the_counters_are_flask_limiters(make_api, redis_url):
    """The intake limiter uses Flask-Limiter's keys and data in Redis: a host still running the
    previous version (Flask-Limiter's sliding-window counter) shares the counters during a deploy."""
    from limits import parse
    from limits.storage import storage_from_string
    from limits.strategies import SlidingWindowCounterRateLimiter

    prefix, email = f"compat-{uuid.uuid4().hex[:8]}", f"{uuid.uuid4().hex}@example.org"
    old_host = SlidingWindowCounterRateLimiter(storage_from_string(redis_url))
    item = parse("3 per day")
    assert old_host.hit(item, prefix, f"author:{email}", "api.create_comment:author")
    api = make_api(RATE_LIMIT="3 per day", RATELIMIT_STORAGE_URI=redis_url, RATELIMIT_KEY_PREFIX=prefix)
    assert [api.post_comment(f"c{i}", author={"email": email.upper()}).status_code for i in range(3)] == [201, 201, 429]
    assert not old_host.test(item, prefix, f"author:{email}", "api.create_comment:author")  # and it sees ours


def test_memory_and_redis_counters_agree(redis_url):
    """The in-process counters (one worker, or the fall-back) follow the Redis script step by step."""
    from limits import parse
    from limits.storage import storage_from_string

    from moderation.limits import MemoryCounters, RedisCounters

    item = parse("2 per day")
    memory, shared = MemoryCounters(), RedisCounters(storage_from_string(redis_url))
    a, b = f"test/{uuid.uuid4().hex}", f"test/{uuid.uuid4().hex}"
    for counters in ([(a, item)], [(a, item), (b, item)], [(b, item)], [(a, item)], [(b, item)]):
        (admitted_m, windows_m), (admitted_r, windows_r) = memory.acquire_all(counters), shared.acquire_all(counters)
        assert admitted_m == admitted_r
        assert [(w.previous_count, w.current_count) for w in windows_m] == [(w.previous_count, w.current_count) for w in windows_r]
        assert all(abs(m.current_ttl - r.current_ttl) < 5 for m, r in zip(windows_m, windows_r))
