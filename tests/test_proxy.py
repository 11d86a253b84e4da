"""Behind a reverse proxy (PROXY_HOPS): whose address, scheme and host the app sees, the desk's
per-address sign-in limit, the access log and the HTTPS redirect, on SQLite and PostgreSQL.

The Flask client connects from PROXY, as the proxy would; X-Forwarded-* headers carry what
the proxy says (its entry is always the rightmost) and what a client forged (further left).
"""

from __future__ import annotations

import logging

import pytest

from conftest import Desk

PROXY = "10.0.0.2"


def behind_proxy(api, forwarded_for: str | None = None, **headers: str) -> Desk:
    """A desk client whose requests all arrive from the proxy, carrying these forwarded headers."""
    desk = Desk(api)
    desk.client.environ_base["REMOTE_ADDR"] = PROXY
    if forwarded_for is not None:
        desk.client.environ_base["HTTP_X_FORWARDED_FOR"] = forwarded_for
    for name, value in headers.items():
        desk.client.environ_base["HTTP_" + name.upper()] = value
    return desk


def with_probe(api):
    """Add a route that answers what the app believes about the request (before any request is served)."""
    from flask import request

    api.app.add_url_rule("/_probe", "probe", lambda: {"remote_addr": request.remote_addr, "scheme": request.scheme,
                                                     "host": request.host, "is_secure": request.is_secure})
    return api


def sign_ins(desk: Desk, times: int) -> list[int]:
    return [desk.login("nobody", "guess").status_code for _ in range(times)]


def access_addresses(caplog) -> list[str]:
    return [r.remote_addr for r in caplog.records if r.name == "moderation.access" and r.path == "/moderate/login" and r.method == "POST"]


def test_without_proxy_hops_forwarded_headers_are_ignored(make_api):
    api = with_probe(make_api())
    seen = behind_proxy(api, "198.51.100.1", X_FORWARDED_PROTO="https", X_FORWARDED_HOST="evil.example").client.get("/_probe").json
    assert seen == {"remote_addr": PROXY, "scheme": "http", "host": "localhost", "is_secure": False}


def test_without_proxy_hops_a_forged_forwarded_for_does_not_escape_the_sign_in_limit(make_api, caplog):
    api = make_api(LOGIN_RATE_LIMIT="2 per day")
    caplog.set_level(logging.INFO, logger="moderation.access")
    assert sign_ins(behind_proxy(api, "198.51.100.1"), 2) == [401, 401]
    # Another forged address from the same connecting address: the same count, now spent.
    assert sign_ins(behind_proxy(api, "198.51.100.2"), 1) == [429]
    assert sign_ins(behind_proxy(api), 1) == [429]
    assert set(access_addresses(caplog)) == {PROXY}


def test_with_one_hop_the_app_sees_the_client_the_proxy_names(make_api):
    api = with_probe(make_api(PROXY_HOPS=1))
    client = behind_proxy(api, "203.0.113.9, 198.51.100.1", X_FORWARDED_PROTO="https",
                          X_FORWARDED_HOST="moderation.example.org").client
    assert client.get("/_probe").json == {"remote_addr": "198.51.100.1", "scheme": "https", "host": "moderation.example.org",
                                          "is_secure": True}
    # A proxy that sends no forwarded headers leaves the connection's own values.
    assert behind_proxy(api).client.get("/_probe").json == {"remote_addr": PROXY, "scheme": "http", "host": "localhost",
                                                            "is_secure": False}


def test_with_one_hop_each_moderator_behind_the_proxy_has_their_own_sign_in_count(make_api, caplog):
    api = make_api(PROXY_HOPS=1, LOGIN_RATE_LIMIT="2 per day")
    caplog.set_level(logging.INFO, logger="moderation.access")
    assert sign_ins(behind_proxy(api, "198.51.100.1"), 3) == [401, 401, 429]
    assert sign_ins(behind_proxy(api, "198.51.100.2"), 2) == [401, 401]  # a second moderator: a count of their own
    # A client behind 198.51.100.1 that forges an extra hop on the left is still 198.51.100.1 ...
    assert sign_ins(behind_proxy(api, "192.0.2.77, 198.51.100.1"), 1) == [429]
    # ... and cannot borrow the unspent count of another address that way either.
    assert sign_ins(behind_proxy(api, "198.51.100.3, 198.51.100.2"), 1) == [429]
    assert access_addresses(caplog) == ["198.51.100.1"] * 3 + ["198.51.100.2"] * 2 + ["198.51.100.1", "198.51.100.2"]


def test_with_two_hops_the_second_entry_from_the_right_is_the_client(make_api):
    api = with_probe(make_api(PROXY_HOPS=2))
    seen = behind_proxy(api, "192.0.2.77, 198.51.100.1, 10.0.0.9").client.get("/_probe").json
    assert seen["remote_addr"] == "198.51.100.1"


def test_force_https_redirects_to_the_host_the_proxy_names_only_when_trusted(make_api):
    trusted = make_api(PROXY_HOPS=1, FORCE_HTTPS=True)
    plain = behind_proxy(trusted, "198.51.100.1", X_FORWARDED_PROTO="http", X_FORWARDED_HOST="moderation.example.org")
    response = plain.client.get("/moderate/login")
    assert response.status_code in (301, 302) and response.headers["Location"] == "https://moderation.example.org/moderate/login"
    # The proxy appended "https" after what the client claimed: the proxy's word counts, so no redirect.
    secure = behind_proxy(trusted, "198.51.100.1", X_FORWARDED_PROTO="http, https", X_FORWARDED_HOST="moderation.example.org")
    answer = secure.client.get("/moderate/login")
    assert answer.status_code == 200 and "max-age" in answer.headers["Strict-Transport-Security"]
    untrusted = make_api(FORCE_HTTPS=True)
    forged = behind_proxy(untrusted, "198.51.100.1", X_FORWARDED_PROTO="http, https", X_FORWARDED_HOST="moderation.example.org")
    response = forged.client.get("/moderate/login")
    assert response.status_code in (301, 302) and response.headers["Location"] == "https://localhost/moderate/login"


@pytest.mark.parametrize("hops", [-1, "1", True, 1.5])
def test_proxy_hops_must_be_a_count(make_api, hops):
    with pytest.raises(ValueError, match="PROXY_HOPS"):
        make_api(PROXY_HOPS=hops)


def test_proxy_hops_comes_from_the_environment_as_a_number():
    from moderation.config import load_config

    assert load_config(environ={"MODERATION_PROXY_HOPS": "2"})["PROXY_HOPS"] == 2
    assert load_config(environ={})["PROXY_HOPS"] == 0
