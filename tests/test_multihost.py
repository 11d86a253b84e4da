"""Several hosts: two `moderation serve` processes (two loopback ports standing for two hosts)
sharing one PostgreSQL schema, one Redis and one SECRET_KEY.

Without PostgreSQL or Redis these tests are skipped, except under CI=true, where they fail.
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
import uuid

import pytest
from sqlalchemy import text

from moderation.db import current_revision, head_revision, make_engine
from tests.conftest import POSTGRES_URL, _postgres_reachable
from tests.test_faults import _redis_reachable, _require, faults

PASSWORD = "correct horse battery staple"


def _schema():
    _require(_postgres_reachable(), f"PostgreSQL at {POSTGRES_URL}")
    name = f"multihost_{uuid.uuid4().hex[:12]}"
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {name}"))
    yield name
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA {name} CASCADE"))
    admin.dispose()


schema = pytest.fixture(_schema)  # an empty private schema (no migrations yet), dropped at the end
shared_schema = pytest.fixture(_schema, scope="module", name="shared_schema")


def _env(schema: str, tiny_bundle, folder) -> dict:
    """Settings shared by every host: the database, Redis (with this run's key prefix), the secret key, the registry."""
    _require(_redis_reachable(), f"Redis at {faults.DEFAULT_REDIS_URL}")
    return faults.base_env(folder / "shared", tiny_bundle,
                           MODERATION_DATABASE_URL=POSTGRES_URL, MODERATION_DATABASE_SCHEMA=schema,
                           MODERATION_RATELIMIT_STORAGE_URI=faults.DEFAULT_REDIS_URL,
                           MODERATION_RATELIMIT_KEY_PREFIX=f"multihost-{uuid.uuid4().hex[:12]}", MODERATION_RATE_LIMIT="3 per day",
                           MODERATION_SECRET_KEY="shared-" + uuid.uuid4().hex, MODERATION_SECURE_COOKIES="false",
                           MODERATION_HOLD_WORDS='["harbour"]',  # every test comment is held for a moderator
                           MODERATION_MODELS_DIR=str(folder / "shared" / "models"), MODERATION_MODEL_CHECK_SECONDS="0.3")


def _host(env: dict, folder, name: str) -> dict:
    """One host's environment: its own INSTANCE_DIR (nothing on disk is shared but the registry)."""
    return {**env, "MODERATION_INSTANCE_DIR": str(folder / name)}


def test_two_hosts_migrating_together_migrate_once(schema, tiny_bundle, tmp_path):
    env = _env(schema, tiny_bundle, tmp_path)
    commands = [subprocess.Popen([str(faults.BIN / "moderation"), "db", "upgrade"], env=_host(env, tmp_path, host),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for host in ("a", "b")]
    outputs = [command.communicate(timeout=120) for command in commands]
    assert [command.returncode for command in commands] == [0, 0], outputs
    engine = make_engine(POSTGRES_URL, schema=schema)
    try:
        assert current_revision(engine) == head_revision()
        with engine.connect() as connection:
            assert connection.scalar(text("SELECT count(*) FROM alembic_version")) == 1
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def shared(shared_schema, tiny_bundle, tmp_path_factory):
    """Hosts A and B (one worker each) on a migrated schema, a site and a moderator key, desk user mia."""
    folder = tmp_path_factory.mktemp("multihost")
    env = _env(shared_schema, tiny_bundle, folder)
    faults.moderation(env, "db", "upgrade")
    keys = {role: faults.create_key(env, role, role) for role in ("site", "moderator")}
    subprocess.run([str(faults.BIN / "moderation"), "users", "add", "mia"], input=PASSWORD + "\n", env=env, check=True,
                   capture_output=True, text=True)
    servers = [faults.Server(_host(env, folder, name), workers=1) for name in ("a", "b")]  # started together
    try:
        for server in servers:
            server.wait_ready()
        yield {"a": servers[0].base, "b": servers[1].base, "keys": keys, "env": env, "folder": folder}
    finally:
        for server in servers:
            server.stop()
        faults._drop_redis_keys(faults.DEFAULT_REDIS_URL, env["MODERATION_RATELIMIT_KEY_PREFIX"])


@pytest.fixture
def hosts(shared):
    return shared["a"], shared["b"], shared["keys"]


def _comment(n: int, **author) -> dict:
    """A comment by a new reader (its own email and IP, so other tests' counts do not meet the rate limit)."""
    tag = uuid.uuid4().hex[:8]
    return {"text": f"Comment {n} on the harbour plans, posted {tag}.", "external_id": f"mh-{n}-{tag}",
            "author": {"email": f"reader-{tag}@example.org", "ip": f"10.{n % 250}.{int(tag[:2], 16)}.{int(tag[2:4], 16) % 250 + 1}", **author}}


def test_a_comment_posted_through_one_host_is_decided_through_the_other(hosts):
    a, b, keys = hosts
    status, comment, _ = faults.call(a + "/api/v1/comments", _comment(1), keys["site"])
    assert status == 201 and comment["status"] == "pending", comment
    status, decided, _ = faults.call(b + f"/api/v1/comments/{comment['id']}/decision", {"action": "approve"}, keys["moderator"])
    assert status == 200 and decided["status"] == "published", decided
    status, seen, _ = faults.call(a + f"/api/v1/comments/{comment['id']}", key=keys["site"])
    assert status == 200 and seen["status"] == "published" and [h["action"] for h in seen["history"]][-1] == "approve"


def test_the_rate_limit_is_shared_by_the_hosts(hosts):
    a, b, keys = hosts  # RATE_LIMIT "3 per day", counted in the shared Redis
    reader = {"email": f"flood-{uuid.uuid4().hex[:8]}@example.org"}
    statuses = [faults.call(base + "/api/v1/comments", _comment(n, **reader), keys["site"])[0] for n, base in enumerate((a, a, b))]
    assert statuses == [201, 201, 201]
    for base in (b, a):
        status, body, headers = faults.call(base + "/api/v1/comments", _comment(9, **reader), keys["site"])
        assert status == 429 and body["error"]["code"] == "rate_limited" and int(headers["Retry-After"]) > 0, body


def test_a_model_promoted_through_the_shared_registry_is_served_by_every_host(hosts, shared, tiny_bundle, tmp_path):
    a, b, keys = hosts
    env = shared["env"]
    old = faults.call(a + "/readyz")[1]["model_version"]
    new = tmp_path / "new-bundle"
    shutil.copytree(tiny_bundle, new)
    manifest = json.loads((new / "manifest.json").read_text())
    manifest["version"] = "multihost-next"
    (new / "manifest.json").write_text(json.dumps(manifest))
    faults.moderation(env, "models", "add", str(new))
    faults.moderation(env, "models", "promote", "multihost-next")
    deadline, served = time.monotonic() + 60, {}
    while time.monotonic() < deadline and set(served.values()) != {"multihost-next"}:
        for base in (a, b):
            status, body, _ = faults.call(base + "/api/v1/comments", _comment(int(time.monotonic())), keys["site"])
            assert status == 201, body
            served[base] = body["model_version"]
        time.sleep(0.2)
    assert old != "multihost-next" and served == {a: "multihost-next", b: "multihost-next"}


def test_a_desk_session_opened_on_one_host_works_on_the_other(hosts):
    a, b, keys = hosts
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with browser.open(a + "/moderate/login", timeout=30) as answer:
        page = answer.read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"name": "mia", "password": PASSWORD, "csrf_token": token}).encode()
    with browser.open(a + "/moderate/login", data=form, timeout=30) as signed_in:
        assert signed_in.status == 200 and "/moderate/login" not in signed_in.url, signed_in.url
    cookies = "; ".join(f"{c.name}={c.value}" for c in jar)
    # The same cookie, sent to the other host: signed with the shared SECRET_KEY, its session row in the shared database.
    request = urllib.request.Request(b + "/moderate/queue", headers={"Cookie": cookies})
    no_redirect = urllib.request.build_opener(_NoRedirect)
    with no_redirect.open(request, timeout=30) as answer:
        assert answer.status == 200 and "mia" in answer.read().decode()
    anonymous = urllib.request.Request(b + "/moderate/queue")
    with pytest.raises(urllib.error.HTTPError) as refused:
        no_redirect.open(anonymous, timeout=30)
    refused.value.close()
    assert refused.value.code == 302  # without the cookie: sent to sign in


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None
