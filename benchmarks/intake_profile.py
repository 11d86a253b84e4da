"""Per-request cost of ``POST /api/v1/comments`` inside one process, stage by stage.

    python benchmarks/intake_profile.py [--requests 3000] [--database sqlite|postgres]
                                        [--ratelimit-storage memory://|redis://127.0.0.1:6379]
                                        [--model DIR] [--cprofile N] [--out FILE]

Builds the real app (`create_app`, JSON logs going to /dev/null, metrics, the limiter, the
model) on a fresh SQLite file or a fresh PostgreSQL schema (dropped afterwards), and posts
the same varied comments benchmarks/load.py sends, through the WSGI app directly (no
sockets, no gunicorn). Every stage is timed by a thin wrapper around the function that does
it; a stage's time excludes the stages nested in it, so the lines add up to the request's
total, and "Flask/Werkzeug and the rest" is what no wrapper covers (routing, request and
response objects, context push/pop, the test client's environ). The wrappers cost about
1 µs each; ``--cprofile N`` instead prints cProfile's top N functions (whose own overhead
inflates Python-heavy code).

This is the steady, low-noise number beside the load benchmark's throughput: it measures
CPU spent per request in one worker, which on a 2-core machine is what bounds req/s.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import logging
import os
import pstats
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.load import _AGENTS, _DOMAINS, _FIRST, _LAST, _SECTIONS, ARTICLES, AUTHORS, comment_texts  # noqa: E402

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


class Stages:
    """Exclusive time per stage: each wrapper subtracts the time of wrappers nested inside it."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)  # wall clock
        self.cpu: dict[str, float] = defaultdict(float)  # this thread's CPU time
        self.calls: dict[str, int] = defaultdict(int)
        self._stack: list[list[float]] = []  # [wall, cpu] spent in nested stages, per open stage
        self.enabled = True

    def wrap(self, name: str, function):
        perf_counter, thread_time = time.perf_counter, time.thread_time

        def timed(*args, **kwargs):
            if not self.enabled:
                return function(*args, **kwargs)
            self._stack.append([0.0, 0.0])
            started, cpu_started = perf_counter(), thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                spent, cpu_spent = perf_counter() - started, thread_time() - cpu_started
                nested = self._stack.pop()
                self.seconds[name] += spent - nested[0]
                self.cpu[name] += cpu_spent - nested[1]
                self.calls[name] += 1
                if self._stack:
                    self._stack[-1][0] += spent
                    self._stack[-1][1] += cpu_spent

        timed.__wrapped__ = function
        for attribute in ("__name__", "__qualname__", "__module__", "__doc__"):
            if hasattr(function, attribute):
                setattr(timed, attribute, getattr(function, attribute))
        return timed

    def patch(self, owner, attribute: str, name: str) -> None:
        setattr(owner, attribute, self.wrap(name, getattr(owner, attribute)))

    def reset(self) -> None:
        self.seconds.clear()
        self.cpu.clear()
        self.calls.clear()


def bodies(count: int, seed: int) -> list[bytes]:
    """The load benchmark's kind of bodies: varied texts, authors, e-mail and IP addresses, articles, external ids."""
    rng = random.Random(seed)
    texts = comment_texts(3000)
    tag = uuid.uuid4().hex[:8]
    out = []
    for n in range(count):
        a = rng.randrange(AUTHORS)
        art = rng.randint(1, ARTICLES)
        out.append(json.dumps({
            "text": rng.choice(texts),
            "author": {"name": f"{_FIRST[a % len(_FIRST)]} {_LAST[(a // len(_FIRST)) % len(_LAST)]}",
                       "email": f"reader{a}@{_DOMAINS[a % len(_DOMAINS)]}",
                       "ip": f"10.{a // 65536 % 256}.{a // 256 % 256}.{a % 256}", "user_agent": _AGENTS[a % len(_AGENTS)]},
            "article": {"id": str(art), "url": f"https://news.example.org/articles/{art}", "title": f"Article {art}",
                        "section": _SECTIONS[art % len(_SECTIONS)]},
            "external_id": f"{tag}-{n}",
        }).encode())
    return out


def instrument(stages: Stages, app) -> None:
    """Wrap every stage of intake, and every hook the app runs around a request."""
    from moderation import api, assessor, auth, intake, language, logs, metrics, store, validation

    stages.patch(app, "wsgi_app", "total (WSGI app)")
    for name, label in (("stored_retry", "retry lookup (SELECT by external_id)"), ("_admit", "rate limit: check (incl. storage)")):
        if hasattr(api, name):  # the API's own helpers, as they are in this version
            stages.patch(api, name, label)
    try:
        from flask_limiter import Limiter

        if "moderation.intake_limiter" not in app.extensions:  # intake still limited by Flask-Limiter's decorators
            stages.patch(Limiter, "_check_request_limit", "rate limit: check (incl. storage)")
    except ImportError:
        pass
    stages.patch(auth, "current_key", "auth: API key")
    stages.patch(validation, "json_object", "validation: JSON body")
    stages.patch(validation, "new_comment", "validation: fields")
    stages.patch(api, "submit", "intake: the rest (Facts, values, policy)")
    stages.patch(intake, "normalize", "intake: normalize text")
    stages.patch(store, "text_hash", "intake: text hash")
    stages.patch(assessor.Assessor, "assess", "scoring + explanation")
    stages.patch(language, "detect", "language detection")
    for name in ("author_facts", "intake_facts"):
        if hasattr(store, name):
            stages.patch(store, name, f"store: {name.replace('_', ' ')} (SELECT)")
    stages.patch(store, "add_comment", "store: INSERT comment+audit+outbox, commit")
    stages.patch(metrics, "record_decision", "metrics: decision counters")
    stages.patch(api, "_created", "response: comment_json + jsonify")
    stages.patch(logs.access_log, "info", "logging: access line (JSON, redaction, write)")
    for hooks in app.before_request_funcs.values():
        hooks[:] = [stages.wrap(f"before_request: {_hook_name(h)}", h) for h in hooks]
    for hooks in app.after_request_funcs.values():
        hooks[:] = [stages.wrap(f"after_request: {_hook_name(h)}", h) for h in hooks]
    app.teardown_appcontext_funcs[:] = [stages.wrap(f"teardown: {_hook_name(h)}", h) for h in app.teardown_appcontext_funcs]


def _hook_name(hook) -> str:
    function = getattr(hook, "func", hook)  # functools.partial (Flask-Limiter's header hook)
    name = getattr(function, "__qualname__", repr(function))
    if "inject_headers" in name:
        return "rate-limit headers (window stats from storage)"
    return name.replace(".<locals>", "")


def run(args) -> dict:
    from sqlalchemy import text

    from moderation import create_app, logs, store
    from moderation.db import make_engine, upgrade

    instance = Path(tempfile.mkdtemp(prefix="moderation-profile-"))
    schema = None
    config = {"INSTANCE_DIR": str(instance), "MODEL_DIR": str(args.model), "RATE_LIMIT": "1000000 per minute",
              "RATELIMIT_STORAGE_URI": args.ratelimit_storage, "LOG_FORMAT": "json", "MODEL_CHECK_SECONDS": 5.0}
    admin = None
    if args.database == "postgres":
        schema = f"bench_profile_{uuid.uuid4().hex[:10]}"
        admin = make_engine(args.postgres_url)
        with admin.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
        config.update(DATABASE_URL=args.postgres_url, DATABASE_SCHEMA=schema)
        url = args.postgres_url
    else:
        url = f"sqlite:///{instance / 'moderation.db'}"
    if args.ratelimit_storage.startswith("redis"):
        config["RATELIMIT_KEY_PREFIX"] = f"profile-{uuid.uuid4().hex[:8]}"
    try:
        engine = make_engine(url, schema)
        upgrade(engine)
        from sqlalchemy.orm import Session

        with Session(engine) as session:
            key = store.create_key(session, "profile", "site")
            session.commit()
        engine.dispose()
        stages = Stages()
        app = create_app(config)
        sink = open(os.devnull, "w")
        logs.configure("json", stream=sink)  # the lines are formatted and written, to /dev/null
        instrument(stages, app)
        client = app.test_client()
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        warm = bodies(args.warmup, seed=1)
        measured = bodies(args.requests, seed=2)
        statuses: dict[int, int] = defaultdict(int)
        for body in warm:
            client.post("/api/v1/comments", data=body, headers=headers)
        stages.reset()
        profiler = cProfile.Profile() if args.cprofile else None
        if profiler:
            stages.enabled = False
            profiler.enable()
        started = time.perf_counter()
        for body in measured:
            statuses[client.post("/api/v1/comments", data=body, headers=headers).status_code] += 1
        elapsed = time.perf_counter() - started
        if profiler:
            profiler.disable()
        sink.close()
        logging.getLogger().handlers.clear()
        result = {"requests": args.requests, "status": dict(statuses), "database": args.database,
                  "ratelimit_storage": args.ratelimit_storage, "mean_ms_per_request_incl_test_client": elapsed / args.requests * 1000}
        if profiler:
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats("tottime").print_stats(args.cprofile)
            stats.sort_stats("cumulative").print_stats(args.cprofile)
            result["cprofile"] = out.getvalue()
        else:
            result["mean_ms_per_request_wsgi"] = sum(stages.seconds.values()) / args.requests * 1000
            result["cpu_ms_per_request_wsgi"] = sum(stages.cpu.values()) / args.requests * 1000
            result["stages_us_per_request"] = {
                ("Flask/Werkzeug and the rest" if name == "total (WSGI app)" else name):
                    {"wall": round(seconds / args.requests * 1e6, 1), "cpu": round(stages.cpu[name] / args.requests * 1e6, 1)}
                for name, seconds in sorted(stages.seconds.items(), key=lambda item: -stages.cpu[item[0]])
            }
        return result
    finally:
        shutil.rmtree(instance, ignore_errors=True)
        if admin is not None:
            with admin.begin() as connection:
                connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="measured requests (default 3000)")
    parser.add_argument("--warmup", type=int, default=500, help="requests before measuring (default 500)")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--ratelimit-storage", default="memory://", help="e.g. redis://127.0.0.1:6379")
    parser.add_argument("--model", type=Path, default=ROOT / "instance" / "model")
    parser.add_argument("--cprofile", type=int, default=0, metavar="N", help="print cProfile's top N functions instead of stages")
    parser.add_argument("--out", type=Path, help="also write the result as JSON here")
    args = parser.parse_args()
    args.model = args.model.resolve()
    result = run(args)
    if "cprofile" in result:
        print(result.pop("cprofile"))
    else:
        print(f"{args.database}, rate limits in {args.ratelimit_storage}: {result['requests']} requests, status {result['status']}")
        print(f"per request in the WSGI app: {result['mean_ms_per_request_wsgi']:.3f} ms wall, {result['cpu_ms_per_request_wsgi']:.3f} ms CPU "
              f"({result['mean_ms_per_request_incl_test_client']:.3f} ms wall with the test client)")
        print(f"  {'wall µs':>9} {'CPU µs':>9} {'CPU %':>6}  stage (sorted by CPU)")
        for name, micros in result["stages_us_per_request"].items():
            print(f"  {micros['wall']:9.1f} {micros['cpu']:9.1f} {micros['cpu'] / 10 / result['cpu_ms_per_request_wsgi']:6.1f}  {name}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
