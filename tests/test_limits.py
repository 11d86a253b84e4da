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
