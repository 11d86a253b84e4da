"""Signed webhooks against a real local HTTP receiver, on SQLite and PostgreSQL: signatures, the outbox
written with each status change, retries with back-off, disabling, and delivery after a restart; one
comment's events in order, two dispatchers at once, hostile receivers (trickling, redirecting, unusable
hosts), forged signature headers, and the addresses webhooks may never go to (only DNS is stubbed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from moderation import webhooks
from moderation.cli import cli
from moderation.schema import Comment, OutboxEvent, WebhookEndpoint

FAST = webhooks.Policy(timeout=2.0, max_attempts=4, backoff=0.01, backoff_cap=0.05, disable_after=50)
ONCE = webhooks.Policy(timeout=2.0, max_attempts=4, backoff=60, backoff_cap=60, disable_after=50)  # a failed event waits a minute


class Receiver:
    """A site's webhook endpoint on loopback: records every request, answers the statuses it is told to."""

    def __init__(self):
        self.requests: list[dict] = []
        self.answers: list = []  # next statuses (or (status, headers)) to answer; 200 once empty
        self.delay = 0.0  # seconds to think before answering
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"headers": dict(self.headers), "body": body})
                time.sleep(receiver.delay)
                answer = receiver.answers.pop(0) if receiver.answers else 200
                status, headers = answer if isinstance(answer, tuple) else (answer, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/moderation"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.requests]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def receiver():
    running = Receiver()
    yield running
    running.close()


def _session(api) -> Session:
    return Session(api.app.extensions["moderation.engine"])


def _add(api, url: str, events=None) -> tuple[int, str]:
    with _session(api) as session:
        endpoint, secret = webhooks.add_endpoint(session, "site-test", url, events)
        return endpoint.id, secret


def _deliver(api, policy=FAST, rounds: int = 1) -> None:
    with webhooks.client(policy) as client, _session(api) as session:
        for _ in range(rounds):
            webhooks.deliver_due(session, client, policy)


def test_signatures_verify_and_refuse_tampering_wrong_secrets_and_replays():
    body = b'{"id":1,"type":"comment.held"}'
    header = webhooks.signature_header("whsec_x", body, timestamp=1_800_000_000)
    assert webhooks.verify("whsec_x", header, body, now=1_800_000_010)
    assert not webhooks.verify("whsec_x", header, body + b" ", now=1_800_000_010)
    assert not webhooks.verify("whsec_y", header, body, now=1_800_000_010)
    assert not webhooks.verify("whsec_x", header, body, now=1_800_000_000 + webhooks.REPLAY_WINDOW_SECONDS + 1)
    assert not webhooks.verify("whsec_x", "garbage", body, now=1_800_000_010)


def test_endpoints_need_an_http_url_and_known_events(api):
    with _session(api) as session:
        for url, events in (("ftp://example.org/x", None), ("not a url", None), ("https://example.org/x", ["comment.exploded"])):
            with pytest.raises(webhooks.WebhookError):
                webhooks.add_endpoint(session, "site-test", url, events)


def test_every_status_change_is_delivered_signed_to_the_site_s_endpoint(api, receiver):
    endpoint_id, secret = _add(api, receiver.url)
    held = api.post_comment("A comment the test thresholds hold.").json
    other_site = api.app.test_client()  # a comment from another site must not reach this endpoint
    with _session(api) as session:
        from moderation import store

        other_key = store.create_key(session, "other-site", "site")
    other_site.post("/api/v1/comments", json={"text": "Another site's comment."}, headers={"Authorization": f"Bearer {other_key}"})
    assert api.decide(held["id"], "approve").status_code == 200
    _deliver(api)
    events = receiver.events()
    assert [(e["type"], e["comment"]["id"], e["comment"]["status"]) for e in events] == [
        ("comment.held", held["id"], "pending"), ("comment.approved", held["id"], "published")]
    for request, event in zip(receiver.requests, events):
        assert webhooks.verify(secret, request["headers"]["X-Moderation-Signature"], request["body"])
        assert request["headers"]["X-Moderation-Event"] == event["type"]
        assert request["headers"]["X-Moderation-Delivery"] == str(event["id"])
    assert "email" not in json.dumps(events)  # ids and outcomes only, no reader data
    with _session(api) as session:
        assert [d.status_code for d in reversed(webhooks.deliveries(session, endpoint_id))] == [200, 200]


def test_an_endpoint_hears_only_the_events_it_asked_for(api, receiver):
    _add(api, receiver.url, ["comment.rejected"])
    first = api.post_comment("One comment.").json["id"]
    second = api.post_comment("Another comment.", author={"email": "b@example.org"}).json["id"]
    api.decide(first, "approve")
    api.decide(second, "reject", "spam")
    _deliver(api)
    assert [(e["type"], e["comment"]["id"]) for e in receiver.events()] == [("comment.rejected", second)]


def test_the_outbox_row_is_written_with_the_comment_or_not_at_all(api, receiver):
    _add(api, receiver.url)
    for n in range(5):
        api.post_comment(f"Comment number {n}.", author={"email": f"o{n}@example.org"})
    with _session(api) as session:
        comments = session.scalar(select(func.count()).select_from(Comment))
        queued = session.scalar(select(func.count()).select_from(OutboxEvent))
    assert comments == queued == 5


def test_failures_are_retried_with_back_off_until_delivered_at_least_once(api, receiver):
    endpoint_id, _ = _add(api, receiver.url)
    api.post_comment("Retry me.")
    receiver.answers = [500, 503]
    for _ in range(20):
        _deliver(api)
        if len(receiver.requests) == 3:
            break
        time.sleep(0.03)
    assert [r["headers"]["X-Moderation-Delivery"] for r in receiver.requests] == [receiver.requests[0]["headers"]["X-Moderation-Delivery"]] * 3
    with _session(api) as session:
        log = list(reversed(webhooks.deliveries(session, endpoint_id)))
        assert [(d.status_code, d.error) for d in log] == [(500, "HTTP 500"), (503, "HTTP 503"), (200, None)]
        assert session.get(WebhookEndpoint, endpoint_id).failures == 0


def test_the_wait_doubles_up_to_the_cap():
    policy = webhooks.Policy(backoff=10, backoff_cap=60)
    waits = [policy.delay(n).total_seconds() for n in range(1, 6)]
    assert all(low * 0.8 <= wait <= low for wait, low in zip(waits, [10, 20, 40, 60, 60]))


def test_an_event_is_given_up_after_the_last_attempt(api, receiver):
    _add(api, receiver.url)
    api.post_comment("Nobody will take me.")
    receiver.answers = [500] * 10
    for _ in range(30):
        _deliver(api)
        time.sleep(0.02)
    assert len(receiver.requests) == FAST.max_attempts
    with _session(api) as session:
        assert session.scalar(select(OutboxEvent.gave_up_at)) is not None


def test_an_endpoint_that_keeps_failing_is_disabled_with_the_reason_and_can_be_enabled_again(api, receiver, monkeypatch):
    endpoint_id, _ = _add(api, receiver.url)
    for n in range(3):
        api.post_comment(f"Comment {n} for a broken endpoint.", author={"email": f"x{n}@example.org"})
    receiver.answers = [500] * 3
    _deliver(api, webhooks.Policy(timeout=2.0, max_attempts=10, backoff=0.01, backoff_cap=0.01, disable_after=3))
    with _session(api) as session:
        endpoint = session.get(WebhookEndpoint, endpoint_id)
        assert endpoint.disabled_at is not None
        assert endpoint.disabled_reason == "disabled after 3 failed deliveries in a row; last: HTTP 500"
    monkeypatch.setenv("MODERATION_DATABASE_URL", api.app.config["DATABASE_URL"])
    if api.app.config.get("DATABASE_SCHEMA"):
        monkeypatch.setenv("MODERATION_DATABASE_SCHEMA", api.app.config["DATABASE_SCHEMA"])
    listed = CliRunner().invoke(cli, ["webhooks", "list"]).output
    assert "disabled after 3 failed deliveries in a row" in listed
    time.sleep(0.05)
    _deliver(api)  # disabled: nothing is sent
    assert len(receiver.requests) == 3
    assert CliRunner().invoke(cli, ["webhooks", "enable", str(endpoint_id)]).exit_code == 0
    _deliver(api)
    assert len(receiver.requests) == 6 and len({e["id"] for e in receiver.events()}) == 3


def test_events_survive_a_crash_mid_delivery_and_a_restart(api, receiver, monkeypatch):
    _add(api, receiver.url)
    comment = api.post_comment("Deliver me after the crash.").json["id"]
    with _session(api) as session:  # a dispatcher claims the event, then dies before sending it
        assert webhooks._claim(session, webhooks.utcnow(), 10)
    _deliver(api)
    assert receiver.requests == []  # still leased to the dead dispatcher
    monkeypatch.setattr(webhooks, "LEASE", timedelta(0))
    with _session(api) as session:  # the lease runs out
        session.execute(OutboxEvent.__table__.update().values(next_attempt_at=webhooks.utcnow() - timedelta(seconds=1)))
        session.commit()
    # A fresh process (the restarted dispatcher) delivers it.
    env = {**os.environ, "MODERATION_DATABASE_URL": api.app.config["DATABASE_URL"], "MODERATION_INSTANCE_DIR": api.app.config["INSTANCE_DIR"]}
    if api.app.config.get("DATABASE_SCHEMA"):
        env["MODERATION_DATABASE_SCHEMA"] = api.app.config["DATABASE_SCHEMA"]
    result = subprocess.run([str(Path(sys.executable).parent / "moderation"), "webhooks", "run", "--once"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert [(e["type"], e["comment"]["id"]) for e in receiver.events()] == [("comment.held", comment)]


def _readme_snippet() -> dict:
    """Run the README's receiver snippet; return what it defines."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    snippet = next(block for block in readme.split("```python")[1:] if "def verified" in block).split("```")[0]
    namespace: dict = {}
    exec(snippet, namespace)
    return namespace


def test_the_readme_s_verification_snippet_accepts_our_signatures_and_refuses_others():
    namespace = _readme_snippet()
    body = b'{"id":3,"type":"comment.rejected"}'
    header = webhooks.signature_header("whsec_readme", body)
    assert namespace["verified"]("whsec_readme", header, body)
    assert not namespace["verified"]("whsec_other", header, body)
    assert not namespace["verified"]("whsec_readme", webhooks.signature_header("whsec_readme", body, timestamp=int(time.time()) - 3600), body)


def test_a_site_manages_its_own_endpoints_through_the_api(api, receiver, monkeypatch):
    site = api.headers("site")
    real_add = webhooks.add_endpoint  # the loopback receiver stands in for the site's public server (a site key may name only those)
    monkeypatch.setattr(webhooks, "add_endpoint", lambda *args, **kwargs: real_add(*args, **{**kwargs, "public_only": False}))
    created = api.client.post("/api/v1/webhooks", json={"url": receiver.url, "events": ["comment.held"]}, headers=site)
    assert created.status_code == 201
    endpoint = created.json
    assert endpoint["events"] == ["comment.held"] and endpoint["secret"].startswith("whsec_") and not endpoint["disabled"]
    listed = api.client.get("/api/v1/webhooks", headers=site).json["webhooks"]
    assert [e["id"] for e in listed] == [endpoint["id"]] and "secret" not in listed[0]
    api.post_comment("Held and announced.")
    _deliver(api)
    assert webhooks.verify(endpoint["secret"], receiver.requests[0]["headers"]["X-Moderation-Signature"], receiver.requests[0]["body"])
    log = api.client.get(f"/api/v1/webhooks/{endpoint['id']}/deliveries", headers=site).json["deliveries"]
    assert [(d["status_code"], d["error"]) for d in log] == [(200, None)]
    assert api.client.get("/api/v1/webhooks", headers=api.headers("moderator")).status_code == 403
    assert api.client.delete(f"/api/v1/webhooks/{endpoint['id']}", headers=site).status_code == 204
    assert api.client.get("/api/v1/webhooks", headers=site).json["webhooks"][0]["disabled_reason"] == "removed"


def test_the_webhook_api_refuses_bad_input_naming_the_field_and_hides_other_sites_endpoints(api):
    site = api.headers("site")
    for body, field in (({}, "url"), ({"url": "ftp://x.example"}, "url"), ({"url": "https://x.example", "events": ["nope"]}, "events"),
                        ({"url": "https://x.example", "events": "comment.held"}, "events"), ({"url": 5}, "url")):
        answer = api.client.post("/api/v1/webhooks", json=body, headers=site)
        assert answer.status_code == 422 and field in answer.json["error"]["fields"], (body, answer.json)
    assert api.client.post("/api/v1/webhooks", data="x", headers=site).status_code == 415
    with _session(api) as session:
        from moderation import store

        other = store.create_key(session, "elsewhere", "site")
        endpoint_id = webhooks.add_endpoint(session, "elsewhere", "https://elsewhere.example/hook")[0].id
    assert api.client.get(f"/api/v1/webhooks/{endpoint_id}/deliveries", headers=site).status_code == 404
    assert api.client.delete(f"/api/v1/webhooks/{endpoint_id}", headers=site).status_code == 404
    assert api.client.get("/api/v1/webhooks", headers={"Authorization": f"Bearer {other}"}).json["webhooks"][0]["id"] == endpoint_id


# --- hostile receivers, races and forged requests --------------------------------------------


def test_verify_refuses_any_malformed_header_without_raising():
    body = b'{"id":1}'
    good = webhooks.signature_header("whsec_x", body)
    timestamp = good.split(",")[0]
    for header in (f"{timestamp},v1=\u00e9\u00e9", f"{timestamp},v1", "t=,v1=00", "t=1e9,v1=00", "", ",,,", f"{timestamp}, v1=\u2603"):
        assert webhooks.verify("whsec_x", header, body) is False, header
    assert webhooks.verify("whsec_x", good.replace(",", ", "), body)  # spaces after the comma are tolerated


def test_the_readme_s_snippet_refuses_malformed_headers_without_raising():
    namespace = _readme_snippet()
    body = b'{"id":1}'
    timestamp = webhooks.signature_header("whsec_x", body).split(",")[0]
    for header in (f"{timestamp},v1=\u00e9", "garbage", "t=soon,v1=00", "v1=00", ""):
        assert namespace["verified"]("whsec_x", header, body) is False, header


def test_a_comment_s_events_reach_an_endpoint_in_order_even_when_the_first_is_retried(make_api, receiver):
    """A "published" that failed once must not arrive after the "rejected" that followed it: the site would show the comment."""
    api = make_api(THRESHOLDS={"spam": {"review_at": 2.0, "reject_at": 2.0}, "toxic": {"review_at": 2.0, "reject_at": 2.0}})
    _add(api, receiver.url)
    comment = api.post_comment("Published at once, rejected by a moderator a moment later.").json
    assert comment["status"] == "published"
    policy = webhooks.Policy(timeout=2.0, max_attempts=4, backoff=0.3, backoff_cap=0.3, disable_after=50)
    receiver.answers = [503]
    _deliver(api, policy)  # the "published" event fails and waits ~0.3 s for its retry
    assert api.decide(comment["id"], "reject", "abuse", expected_status="published").status_code == 200
    _deliver(api, policy)  # the "rejected" event must wait behind it
    time.sleep(0.35)
    _deliver(api, policy)
    seen = [(e["type"], e["comment"]["status"]) for e in receiver.events()]
    assert seen == [("comment.published", "published"), ("comment.published", "published"), ("comment.rejected", "rejected")]


def test_two_dispatchers_at_once_send_each_event_exactly_once(api, receiver, monkeypatch):
    monkeypatch.setattr(webhooks, "LEASE", timedelta(seconds=0.2))  # shorter than a batch takes: leases run out mid-batch
    _add(api, receiver.url)
    for n in range(12):
        api.post_comment(f"Comment {n} for two dispatchers.", author={"email": f"d{n}@example.org"})
    # Twelve answers of 0.1 s outlast the 1.2 s lease (twice the attempt's deadline), while the 0.6 s deadline leaves
    # room for a loaded machine: an attempt cut short after the receiver had the event would rightly be sent again.
    receiver.delay = 0.1
    policy = webhooks.Policy(timeout=0.6, max_attempts=4, backoff=0.01, backoff_cap=0.05, disable_after=50)
    start, failures = threading.Barrier(2), []

    def dispatcher():
        try:
            start.wait()
            for _ in range(10):
                _deliver(api, policy)
        except Exception as error:  # pragma: no cover - reported below
            failures.append(error)

    threads = [threading.Thread(target=dispatcher) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    ids = [e["id"] for e in receiver.events()]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 12, ids
    with _session(api) as session:
        assert session.scalar(select(func.count()).select_from(OutboxEvent).where(OutboxEvent.delivered_at.is_(None))) == 0


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/hook", "http://localhost/hook", "http://[::1]/hook", "http://[::ffff:127.0.0.1]/hook",
    "http://2130706433/hook", "http://0x7f.1/hook", "http://10.1.2.3/hook", "http://192.168.0.10/hook", "http://0.0.0.0/",
    "http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/", "http://100.100.100.200/",
])
def test_a_site_key_cannot_point_a_webhook_into_private_networks(api, url):
    answer = api.client.post("/api/v1/webhooks", json={"url": url}, headers=api.headers("site"))
    assert answer.status_code == 422 and "url" in answer.json["error"]["fields"], answer.json
    with _session(api) as session:
        assert webhooks.endpoints(session) == []


def test_the_operator_may_name_a_private_address_but_never_a_metadata_service_nor_an_unusable_host(api):
    with _session(api) as session:
        assert webhooks.add_endpoint(session, "site-test", "http://10.0.0.5:8080/hook")[0].id  # the site's own server beside this one
        for url in ("http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/", "http://a..b/", "http://example.org:70000/"):
            with pytest.raises(webhooks.WebhookError):
                webhooks.add_endpoint(session, "site-test", url)


def test_delivery_refuses_a_name_that_now_resolves_to_a_metadata_service(api, receiver, monkeypatch):
    """A name may resolve elsewhere at delivery than at registration (DNS rebinding): the address connected to is checked."""
    good, _ = _add(api, receiver.url)
    rebound, _ = _add(api, "http://hooks.rebinding.test/moderation")  # does not resolve when registered: accepted
    real = webhooks.socket.getaddrinfo

    def dns(host, *args, **kwargs):  # the attacker's DNS answers with the metadata address now
        if host == "hooks.rebinding.test":
            return [(webhooks.socket.AF_INET, webhooks.socket.SOCK_STREAM, 6, "", ("169.254.169.254", 80))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(webhooks.socket, "getaddrinfo", dns)
    api.post_comment("Announced to both endpoints.")
    _deliver(api, ONCE)
    with _session(api) as session:
        [attempt] = webhooks.deliveries(session, rebound)
        assert attempt.status_code is None and "169.254.169.254" in attempt.error and "link-local" in attempt.error
        assert [d.status_code for d in webhooks.deliveries(session, good)] == [200]


def test_an_endpoint_the_network_library_cannot_reach_does_not_stop_the_others(api, receiver):
    good, _ = _add(api, receiver.url)
    with _session(api) as session:  # written before the URL checks existed: a host name IDNA cannot encode
        session.add(WebhookEndpoint(site="site-test", url="http://a..b/hook", secret="whsec_x", events=",".join(webhooks.EVENTS),
                                    created_at=webhooks.utcnow(), failures=0))
        session.commit()
    api.post_comment("Announced to a broken endpoint first.")
    _deliver(api, ONCE)  # raised UnicodeError out of the dispatcher before, leaving every later event unsent
    assert len(receiver.requests) == 1
    with _session(api) as session:
        errors = [d.error for d in session.scalars(select(webhooks.Delivery).order_by(webhooks.Delivery.id))]
        assert len(errors) == 2 and None in errors and any(e and "UnicodeError" in e for e in errors)


def test_a_redirect_is_a_failed_attempt_and_is_not_followed(api, receiver):
    elsewhere = Receiver()
    try:
        endpoint_id, _ = _add(api, receiver.url)
        receiver.answers = [(307, {"Location": elsewhere.url})]
        api.post_comment("Redirected.")
        _deliver(api, ONCE)
        assert elsewhere.requests == []
        with _session(api) as session:
            assert [(d.status_code, d.error) for d in webhooks.deliveries(session, endpoint_id)] == [(307, "HTTP 307")]
    finally:
        elsewhere.close()


class Trickler:
    """A receiver that answers one byte at a time (its status line, or an endless body), for ``seconds``."""

    def __init__(self, head_first: bool, seconds: float = 8.0):
        import socket

        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"
        self.head_first, self.seconds, self.stop = head_first, seconds, threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            with connection:
                connection.recv(65536)
                if not self.head_first:
                    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n")
                ending = time.monotonic() + self.seconds
                try:
                    while time.monotonic() < ending and not self.stop.is_set():
                        connection.sendall(b"H" if self.head_first else b"x" * 100)
                        time.sleep(0.1)
                except OSError:
                    pass

    def close(self):
        self.stop.set()
        self.listener.close()
        self.thread.join(timeout=10)


@pytest.mark.parametrize("head_first", [True, False], ids=["trickled-status-line", "endless-body"])
def test_a_receiver_that_trickles_its_answer_cannot_hold_the_dispatcher(api, head_first):
    slow = Trickler(head_first)
    try:
        endpoint_id, _ = _add(api, slow.url)
        api.post_comment("Sent to a slow receiver.")
        policy = webhooks.Policy(timeout=1.0, max_attempts=4, backoff=60, backoff_cap=60, disable_after=50)
        started = time.monotonic()
        _deliver(api, policy)
        assert time.monotonic() - started < 3.5  # the whole attempt, not each read, is bounded by the timeout
        with _session(api) as session:
            [attempt] = webhooks.deliveries(session, endpoint_id)
        if head_first:
            assert attempt.status_code is None and "Timeout" in attempt.error
        else:  # the status is the answer; the body is never read
            assert (attempt.status_code, attempt.error) == (200, None)
    finally:
        slow.close()
