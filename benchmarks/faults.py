"""Fault injection under load: what `moderation serve` does when a part of it breaks.

    python benchmarks/faults.py [--duration 20] [--faults kill_worker,postgres,redis,sqlite_busy,disk_full]
                                [--postgres-url URL] [--redis-url URL] [--out benchmarks/results/faults.json]

Everything runs on 127.0.0.1. Each scenario starts the service (a real `moderation serve`
under gunicorn, except disk_full: the Flask app served by werkzeug in this process), runs a
bounded load (CLIENTS threads posting comments with unique external ids, distinct authors
and texts), injects one fault in the middle, lifts it, and checks afterwards:

  kill_worker  SIGKILL to one gunicorn worker (SQLite): gunicorn starts a replacement.
  postgres     the server reaches PostgreSQL through a TCP proxy owned here; the proxy is cut
               (every connection closed, new ones refused: what a restart looks like to the
               app) for CUT seconds, then restored. The PostgreSQL server itself is never touched.
  redis        the same with Redis as the rate-limit storage: intake must go on.
  sqlite_busy  another connection holds SQLite's write lock longer than the busy timeout.
  disk_full    SQLite's `PRAGMA max_page_count` on the app's connections makes the database "full"
               (no root needed for a tiny filesystem), then lifted: space freed.

Counted per scenario: requests sent, answers by status, errors by kind (HTTP status and
message code, or the socket error), rows stored (by external id), 201s whose row is missing
(must be 0), 201s stored more than once (must be 0), rows without their intake audit entry
(half-written, must be 0), stored rows whose request got no 201 (a request cut mid-flight or a
commit whose acknowledgement was lost with the connection: a retry with the same external_id
answers 200 with that row), the slowest answer, and the recovery time: from the moment the
fault is lifted (for kill_worker: from the kill) to the first 201 after it (and, for
kill_worker, until gunicorn has its full count of workers again).

tests/test_faults.py runs the same scenarios for a few seconds each; this script runs them
longer, prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

LOOPBACK = "127.0.0.1"
BIN = Path(sys.executable).parent
DEFAULT_POSTGRES_URL = os.environ.get("MODERATION_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
DEFAULT_REDIS_URL = os.environ.get("MODERATION_TEST_REDIS_URL", "redis://127.0.0.1:6379")
CLIENTS = 4
REQUEST_TIMEOUT = 20.0
FAULTS = ("kill_worker", "postgres", "redis", "sqlite_busy", "disk_full")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


# --- a TCP proxy we can cut --------------------------------------------------------------------


class Proxy:
    """Forwards LOOPBACK:port to target. `cut` closes every connection and refuses new ones
    (a server restart or outage as the client sees it); `restore` listens again on the same port."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port = free_port()
        self.lock = threading.Lock()
        self.sockets: set[socket.socket] = set()
        self.listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((LOOPBACK, self.port))
        listener.listen(128)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self.lock:
            listener, self.listener = self.listener, None
            sockets, self.sockets = self.sockets, set()
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    close = cut

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                if self.listener is not listener:  # cut while connecting
                    client.close()
                    upstream.close()
                    return
                self.sockets.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


# --- the service -------------------------------------------------------------------------------


def moderation(env: dict, *args: str, timeout: float = 120) -> str:
    done = subprocess.run([str(BIN / "moderation"), *args], env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode:
        raise RuntimeError(f"moderation {' '.join(args)} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout.strip()


def create_key(env: dict, name: str, role: str) -> str:
    """`moderation keys create`: the key is the last line printed (log lines may come before it)."""
    return moderation(env, "keys", "create", "--name", name, "--role", role).splitlines()[-1].strip()


def base_env(instance: Path, model: Path, **settings: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODERATION_") or k == "MODERATION_TEST_POSTGRES_URL"}
    env.update({"MODERATION_INSTANCE_DIR": str(instance), "MODERATION_MODEL_DIR": str(model),
                "MODERATION_RATE_LIMIT": "1000000 per minute", "MODERATION_SECRET_KEY": "faults-" + uuid.uuid4().hex,
                "MODERATION_MODEL_CHECK_SECONDS": "3600", **settings})
    return env


def call(url: str, body: dict | None = None, key: str | None = None, timeout: float = REQUEST_TIMEOUT, headers: dict | None = None):
    """(status, json body, response headers); raises OSError on socket errors."""
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                     method="POST" if body is not None else "GET")
    request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null"), dict(response.headers)
    except urllib.error.HTTPError as error:
        with error:  # closes its socket (an unclosed one is a ResourceWarning, an error under pytest)
            raw = error.read()
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = {"raw": raw[:200].decode(errors="replace")}
        return error.code, parsed, dict(error.headers)


class Server:
    """`moderation serve` on a free port; `stop` sends SIGTERM to its process group."""

    def __init__(self, env: dict, workers: int = 2, port: int | None = None, log: Path | None = None):
        self.port = port or free_port()
        self.base = f"http://{LOOPBACK}:{self.port}"
        self.log_path = log or Path(tempfile.mkstemp(prefix="moderation-serve-", suffix=".log")[1])
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen([str(BIN / "moderation"), "serve", "--port", str(self.port), "--workers", str(workers)],
                                        env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited ({self.process.returncode}): {self.output()[-3000:]}")
            with contextlib.suppress(OSError):
                if call(self.base + "/readyz", timeout=5)[0] == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError("server did not become ready: " + self.output()[-3000:])

    def workers(self) -> list[int]:
        """Worker pids: the gunicorn master's children."""
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in path.read_text().split()] if path.exists() else []

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.log.close()


# --- the load ----------------------------------------------------------------------------------


class Load:
    """CLIENTS threads posting comments until stopped; every answer is recorded with its time."""

    def __init__(self, base: str, key: str, tag: str, clients: int = CLIENTS):
        self.base, self.key, self.tag, self.clients = base, key, tag, clients
        self.stop_event = threading.Event()
        self.records: list[dict] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._client, args=(n,), daemon=True) for n in range(clients)]

    def __enter__(self):
        self.started = time.monotonic()
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_):
        self.stop_event.set()
        for thread in self.threads:
            thread.join(REQUEST_TIMEOUT + 5)

    def _client(self, n: int) -> None:
        i = 0
        while not self.stop_event.is_set():
            i += 1
            external_id = f"{self.tag}-{n}-{i}"
            body = {"text": f"Comment {i} from reader {n} of run {self.tag}: the ferry timetable changes again in May.",
                    "external_id": external_id, "article": {"id": f"a{n}", "section": "news"},
                    "author": {"name": f"Reader {n}", "email": f"r{n}-{i}@{self.tag}.example.org", "ip": f"10.{n}.{i // 250 % 250}.{i % 250 + 1}"}}
            sent = time.monotonic()
            record = {"id": external_id, "sent": sent}
            try:
                status, answer, headers = call(self.base + "/api/v1/comments", body, self.key)
                record.update(status=status, retry_after=headers.get("Retry-After"),
                              kind=str(status) if status < 400 else f"{status} {answer.get('error', {}).get('code', '?')}",
                              message=(answer.get("error") or {}).get("message") if isinstance(answer, dict) else None)
            except (OSError, ValueError, http.client.HTTPException) as error:  # refused, reset, timed out, cut off mid-answer
                reason = getattr(error, "reason", None)
                record.update(status=None, kind=f"socket {type(reason or error).__name__}")
                time.sleep(0.05)
            record["answered"] = time.monotonic()
            with self.lock:
                self.records.append(record)
            if record.get("status") not in (200, 201):
                time.sleep(0.02)  # a client that was refused backs off a little

    def warm(self, count: int = 8, timeout: float = 60) -> None:
        """Wait until ``count`` comments got their 201 (workers warmed up) before injecting a fault."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if sum(1 for r in self.records if r.get("status") == 201) >= count:
                    return
            time.sleep(0.05)

    def wait_for_201(self, after: float, timeout: float) -> float | None:
        """Seconds from ``after`` to the first 201 sent after it, waiting up to ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                answered = [r["answered"] for r in self.records if r.get("status") == 201 and r["sent"] >= after]
            if answered:
                return round(min(answered) - after, 3)
            time.sleep(0.05)
        return None


def stored_rows(engine, tag: str) -> tuple[collections.Counter, int]:
    """(external id -> rows, comments of this run without exactly one intake audit entry)."""
    from sqlalchemy import text

    pattern = {"pattern": f"{tag}-%"}
    with engine.connect() as connection:
        ids = collections.Counter(connection.scalars(text("SELECT external_id FROM comments WHERE external_id LIKE :pattern"), pattern))
        half = connection.scalar(text(
            "SELECT count(*) FROM comments c WHERE c.external_id LIKE :pattern AND "
            "(SELECT count(*) FROM audit_log a WHERE a.comment_id = c.id AND a.actor = 'model') <> 1"), pattern)
    return ids, half


def outcome(load: Load, ids: collections.Counter, half_written: int, **extra) -> dict:
    created = {r["id"] for r in load.records if r.get("status") == 201}
    kinds = collections.Counter(r["kind"] for r in load.records if r.get("status") != 201)
    refused = [r for r in load.records if r.get("status") not in (200, 201)]
    return {
        "requests": len(load.records),
        "201s": len(created),
        "rows_stored": sum(ids.values()),
        "errors_by_kind": dict(sorted(kinds.items())),
        "error_messages": sorted({r["message"] for r in refused if r.get("message")}),
        "refusals_without_retry_after": sum(1 for r in refused if r.get("status") in (429, 503) and not r.get("retry_after")),
        "missing_201_rows": len(created - set(ids)),
        "duplicated_rows": sum(1 for count in ids.values() if count > 1),
        "half_written_rows": half_written,
        "rows_without_201": len(set(ids) - created),
        "slowest_answer_s": round(max((r["answered"] - r["sent"] for r in load.records), default=0.0), 3),
        **extra,
    }


def sqlite_integrity(path: Path) -> str:
    connection = sqlite3.connect(path)
    try:
        return connection.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        connection.close()


# --- the scenarios -----------------------------------------------------------------------------


def _sqlite_server(work: Path, model: Path, workers: int = 2, **settings: str):
    env = base_env(work, model, **settings)
    moderation(env, "db", "upgrade")
    key = create_key(env, "site", "site")
    return env, key, work / "moderation.db"


def fault_window(load: Load, start, end, duration: float, length: float, *, wait_for_recovery: bool = True) -> tuple[float, float, float | None]:
    """Under ``load``: run clean, call ``start`` (the fault), wait ``length`` s, call ``end``, run clean again.

    :return: when the fault began, when it ended, and how long until the next 201 (None when not waited for).
    """
    time.sleep((duration - length) / 2)
    began = time.monotonic()
    start()
    time.sleep(length)
    ended = time.monotonic()
    end()
    recovery = load.wait_for_201(ended, 30) if wait_for_recovery else None
    time.sleep(max(0.0, (duration - length) / 2 - (time.monotonic() - ended)))
    return began, ended, recovery


def kill_worker(work: Path, model: Path, duration: float = 6.0) -> dict:
    """SIGKILL one of two workers mid-load on SQLite."""
    from moderation.db import make_engine

    env, key, path = _sqlite_server(work, model)
    server = Server(env, workers=2)
    try:
        server.wait_ready()
        tag = "kw" + uuid.uuid4().hex[:8]
        with Load(server.base, key, tag) as load:
            load.warm()
            time.sleep(duration / 3)
            before = server.workers()
            victim = before[0]
            killed = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            replaced = None
            while time.monotonic() - killed < 60:
                now = server.workers()
                if victim not in now and len(now) == len(before):
                    replaced = round(time.monotonic() - killed, 3)
                    break
                time.sleep(0.05)
            recovery = load.wait_for_201(killed, 30)
            time.sleep(max(0.0, duration * 2 / 3 - (time.monotonic() - killed)))
        engine = make_engine(f"sqlite:///{path}")
        try:
            ids, half = stored_rows(engine, tag)
        finally:
            engine.dispose()
        return outcome(load, ids, half, recovery_s=recovery, worker_replaced_s=replaced, integrity=sqlite_integrity(path),
                       server_alive=server.process.poll() is None, workers_after=len(server.workers()))
    finally:
        server.stop()


def postgres_outage(work: Path, model: Path, duration: float = 6.0, cut: float = 3.0, postgres_url: str = DEFAULT_POSTGRES_URL) -> dict:
    """Cut the server's connections to PostgreSQL (a proxy between them) for ``cut`` seconds."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from moderation.db import make_engine, normalize_url, upgrade

    url = make_url(normalize_url(postgres_url))
    schema = "faults_" + uuid.uuid4().hex[:12]
    admin = make_engine(postgres_url)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    proxy = Proxy(url.host or LOOPBACK, url.port or 5432)
    server = None
    try:
        direct = make_engine(postgres_url, schema=schema)
        upgrade(direct)
        env = base_env(work, model, MODERATION_DATABASE_SCHEMA=schema, MODERATION_DATABASE_TIMEOUT_SECONDS="2",
                       MODERATION_DATABASE_URL=url.set(host=LOOPBACK, port=proxy.port).render_as_string(hide_password=False))
        key = create_key({**env, "MODERATION_DATABASE_URL": postgres_url}, "site", "site")
        server = Server(env, workers=2)
        server.wait_ready()
        tag = "pg" + uuid.uuid4().hex[:8]
        with Load(server.base, key, tag) as load:
            load.warm()
            cut_at, restored, recovery = fault_window(load, proxy.cut, proxy.restore, duration, cut)
        during = [r for r in load.records if cut_at <= r["sent"] < restored]
        ids, half = stored_rows(direct, tag)
        direct.dispose()
        return outcome(load, ids, half, recovery_s=recovery, cut_s=cut,
                       during_cut={"requests": len(during), "by_kind": dict(collections.Counter(r["kind"] for r in during)),
                                   "slowest_answer_s": round(max((r["answered"] - r["sent"] for r in during), default=0.0), 3)},
                       server_alive=server.process.poll() is None)
    finally:
        if server is not None:
            server.stop()
        proxy.close()
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def redis_outage(work: Path, model: Path, duration: float = 6.0, cut: float = 3.0, redis_url: str = DEFAULT_REDIS_URL) -> dict:
    """Cut the server's connections to Redis (rate-limit storage) for ``cut`` seconds, on SQLite."""
    from urllib.parse import urlsplit

    from moderation.db import make_engine

    target = urlsplit(redis_url)
    proxy = Proxy(target.hostname or LOOPBACK, target.port or 6379)
    prefix = "faults-" + uuid.uuid4().hex[:12]
    try:
        env, key, path = _sqlite_server(work, model, MODERATION_RATELIMIT_STORAGE_URI=f"redis://{LOOPBACK}:{proxy.port}",
                                        MODERATION_RATELIMIT_KEY_PREFIX=prefix)
        server = Server(env, workers=2)
        try:
            server.wait_ready()
            tag = "rd" + uuid.uuid4().hex[:8]
            with Load(server.base, key, tag) as load:
                load.warm()
                cut_at, restored, _ = fault_window(load, proxy.cut, proxy.restore, duration, cut, wait_for_recovery=False)
            during = [r for r in load.records if cut_at <= r["sent"] < restored]
            engine = make_engine(f"sqlite:///{path}")
            try:
                ids, half = stored_rows(engine, tag)
            finally:
                engine.dispose()
            output = server.output()
            return outcome(load, ids, half, recovery_s=0.0 if any(r.get("status") == 201 for r in during) else None, cut_s=cut,
                           during_cut={"requests": len(during), "by_kind": dict(collections.Counter(r["kind"] for r in during))},
                           logged_fallback="Rate limit storage unreachable" in output, logged_recovery="Rate limit storage recovered" in output,
                           server_alive=server.process.poll() is None)
        finally:
            server.stop()
            _drop_redis_keys(redis_url, prefix)
    finally:
        proxy.close()


def _drop_redis_keys(redis_url: str, prefix: str) -> None:
    """Delete this run's rate-limit keys (only ours: never FLUSHALL a shared Redis)."""
    try:
        import redis

        client = redis.Redis.from_url(redis_url, socket_timeout=2)
        for name in client.scan_iter(match=f"*{prefix}*", count=500):
            client.delete(name)
    except Exception:
        pass


def sqlite_busy(work: Path, model: Path, duration: float = 6.0, hold: float = 3.0) -> dict:
    """Hold SQLite's write lock from another connection for ``hold`` s, past a 1 s busy timeout."""
    from moderation.db import make_engine

    env, key, path = _sqlite_server(work, model, MODERATION_DATABASE_TIMEOUT_SECONDS="1")
    server = Server(env, workers=2)
    try:
        server.wait_ready()
        tag = "sb" + uuid.uuid4().hex[:8]
        locker = sqlite3.connect(path, isolation_level=None, timeout=10)
        with Load(server.base, key, tag) as load:
            load.warm()
            # BEGIN EXCLUSIVE under WAL takes the write lock; readers go on.
            locked_at, released, recovery = fault_window(load, lambda: locker.execute("BEGIN EXCLUSIVE"),
                                                         lambda: locker.execute("ROLLBACK"), duration, hold)
        locker.close()
        during = [r for r in load.records if locked_at <= r["sent"] < released]
        engine = make_engine(f"sqlite:///{path}")
        try:
            ids, half = stored_rows(engine, tag)
        finally:
            engine.dispose()
        return outcome(load, ids, half, recovery_s=recovery, locked_s=hold, integrity=sqlite_integrity(path),
                       during_lock={"requests": len(during), "by_kind": dict(collections.Counter(r["kind"] for r in during))},
                       server_alive=server.process.poll() is None)
    finally:
        server.stop()


def disk_full(work: Path, model: Path, duration: float = 6.0, full: float = 3.0) -> dict:
    """Make the SQLite database 'full' (max_page_count) for ``full`` seconds, the app served on loopback."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session
    from werkzeug.serving import make_server

    from moderation import create_app, store
    from moderation.db import make_engine, upgrade

    path = work / "moderation.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    app = create_app({"INSTANCE_DIR": str(work), "MODEL_DIR": str(model), "DATABASE_URL": f"sqlite:///{path}",
                      "RATE_LIMIT": "1000000 per minute", "MODEL_CHECK_SECONDS": 3600, "SECRET_KEY": "faults"})
    app_engine = app.extensions["moderation.engine"]
    limit = {"pages": 1_073_741_823}  # SQLite's default maximum

    @event.listens_for(app_engine, "checkout")
    def _max_pages(dbapi_connection, _record, _proxy):
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA max_page_count={limit['pages']}")  # clamps to the current size, never below
        cursor.close()

    with Session(app_engine) as session:
        key = store.create_key(session, "site", "site")
    server = make_server(LOOPBACK, 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://{LOOPBACK}:{server.server_port}"
    try:
        tag = "df" + uuid.uuid4().hex[:8]
        with Load(base, key, tag) as load:
            load.warm()
            # Full: no page may be added; then space is freed.
            full_at, freed, recovery = fault_window(load, lambda: limit.update(pages=1), lambda: limit.update(pages=1_073_741_823),
                                                    duration, full)
        during = [r for r in load.records if full_at <= r["sent"] < freed]
        ids, half = stored_rows(app_engine, tag)
        return outcome(load, ids, half, recovery_s=recovery, full_s=full, integrity=sqlite_integrity(path),
                       during_full={"requests": len(during), "by_kind": dict(collections.Counter(r["kind"] for r in during))})
    finally:
        server.shutdown()
        thread.join()
        app_engine.dispose()


SCENARIOS = {"kill_worker": kill_worker, "postgres": postgres_outage, "redis": redis_outage, "sqlite_busy": sqlite_busy, "disk_full": disk_full}


# --- report ------------------------------------------------------------------------------------


def table(results: dict) -> str:
    lines = [f"{'fault':12} {'sent':>6} {'201s':>6} {'rows':>6} {'missing':>7} {'dup':>4} {'half':>4} {'no-201':>6} {'recovery s':>10}  errors by kind",
             "-" * 110]
    for name, r in results.items():
        if "error" in r:
            lines.append(f"{name:12} failed: {r['error']}")
            continue
        errors = ", ".join(f"{k}: {v}" for k, v in r["errors_by_kind"].items()) or "none"
        recovery = "-" if r.get("recovery_s") is None else f"{r['recovery_s']:.2f}"
        lines.append(f"{name:12} {r['requests']:>6} {r['201s']:>6} {r['rows_stored']:>6} {r['missing_201_rows']:>7} {r['duplicated_rows']:>4} "
                     f"{r['half_written_rows']:>4} {r['rows_without_201']:>6} {recovery:>10}  {errors}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load per scenario")
    parser.add_argument("--fault-seconds", type=float, default=5.0, help="how long each outage lasts")
    parser.add_argument("--faults", default=",".join(FAULTS))
    parser.add_argument("--model", help="bundle to serve (default: train a tiny one from data/examples.csv)")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "faults.json"))
    args = parser.parse_args()
    top = Path(tempfile.mkdtemp(prefix="moderation-faults-"))
    try:
        model = Path(args.model) if args.model else _tiny_model(top / "model")
        results = {}
        for name in args.faults.split(","):
            work = top / name
            work.mkdir()
            kwargs = {"duration": args.duration}
            if name == "postgres":
                kwargs.update(cut=args.fault_seconds, postgres_url=args.postgres_url)
            elif name == "redis":
                kwargs.update(cut=args.fault_seconds, redis_url=args.redis_url)
            elif name == "sqlite_busy":
                kwargs.update(hold=args.fault_seconds)
            elif name == "disk_full":
                kwargs.update(full=args.fault_seconds)
            print(f"running {name} ({args.duration:g} s of load, {CLIENTS} clients)...", flush=True)
            try:
                results[name] = SCENARIOS[name](work, model, **kwargs)
            except Exception as error:  # report and go on with the others
                results[name] = {"error": f"{type(error).__name__}: {error}"}
        print(table(results))
        report = {
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                        "load_average": os.getloadavg(), "note": "shared 2-core machine, other jobs running"},
            "settings": {"duration_s": args.duration, "fault_s": args.fault_seconds, "clients": CLIENTS, "workers": 2},
            "results": results,
        }
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.out}")
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _tiny_model(out: Path) -> Path:
    from training.datasets import default_data_dir
    from training.pipeline import run_training
    from training.train import TrainingConfig

    run_training(default_data_dir(), out, names=["examples"], config=TrainingConfig(kind="logreg"))
    return out


if __name__ == "__main__":
    main()
