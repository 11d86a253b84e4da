"""Load benchmark of ``POST /api/v1/comments`` on SQLite and PostgreSQL, next to a bare Flask endpoint.

    python benchmarks/load.py [--duration 20] [--targets bare,sqlite,postgres] [--model DIR]
                              [--postgres-url URL] [--out benchmarks/results/load.json]

Everything stays on 127.0.0.1: each target is started as a subprocess on a free loopback
port (gunicorn, ``--workers 2``), warmed up, loaded for a fixed time by ``wrk -t2 -c8
--latency`` (locust in headless mode when wrk is missing) with a generated Lua script that
posts varied comments (different texts, authors, e-mail and IP addresses, articles and
external ids), then stopped (SIGTERM, then wait) and cleaned up: temp directories, the
SQLite file, the PostgreSQL schema. The targets:

  bare      a tiny Flask app that parses the JSON body and answers jsonify({"ok": True})
  sqlite    `moderation serve` on a fresh SQLite database in a temp INSTANCE_DIR
  postgres  `moderation serve` on a fresh schema of the PostgreSQL database (dropped afterwards)

After each moderation run the stored comments of the measured phase are counted and matched,
by external id, against the 201 answers: every 201 must be stored. wrk stops mid-flight, so a
few requests (at most one per connection) can reach the server and be stored without their
answer being counted; such rows are reported as "unanswered at cutoff", not as errors.

Targets (8 concurrent clients, 2 workers): moderation throughput >= 50 % of bare Flask's,
p99 <= 25 ms, zero errors (non-2xx and socket errors), stored rows == 201 answers.
Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import platform
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LOOPBACK = "127.0.0.1"
PATH = "/api/v1/comments"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
TARGETS = ("bare", "sqlite", "postgres")
P99_TARGET_MS = 25.0
THROUGHPUT_TARGET = 0.5
AUTHORS = 20_000
ARTICLES = 300

BARE_APP = '''\
from flask import Flask, jsonify, request

app = Flask(__name__)


@app.post("/api/v1/comments")
def comments():
    request.get_json()
    return jsonify({"ok": True})
'''


# --- realistic, varied comment bodies -------------------------------------------------------

_OPENERS = [
    "Great article, thanks for writing it.", "I have to disagree with the author here.", "Interesting read.",
    "Finally someone says it.", "This is the third piece on this topic this week.", "As a teacher myself,",
    "Not sure where the numbers in the second paragraph come from.", "Thanks for the balanced reporting.",
    "My family has lived in this town for forty years and", "I read this twice and still don't get the headline.",
    "Well researched, as always.", "Hmm.", "Can we talk about the elephant in the room?", "Spot on.",
    "With respect, this misses the point.", "Good to see local news covering this.", "Honest question:",
]
_MIDDLES = [
    "the council approved the budget without asking anyone who actually uses the library",
    "the bus line to the hospital was cut last year and nobody seems to remember that",
    "rents have gone up by a third since 2021 while wages have not moved at all",
    "the new bike lanes made my commute safer, whatever the shop owners say",
    "the interview with the minister avoided every difficult question",
    "the school board meeting ran until midnight and the vote was postponed again",
    "the football club deserves credit for the youth programme, not just the results",
    "the water prices keep rising while the pipes keep leaking",
    "nobody explained how the new parking rules will be enforced",
    "the storm damage on the coast road is still not repaired after six months",
    "the hospital waiting times in the chart look much better than what my mother experienced",
    "the farmers' market on Saturdays is the best thing that happened to the old square",
    "the article should mention that the project was already promised before the last election",
    "tourism brings money but the locals pay for the rubbish and the noise",
    "electric buses sound good but who pays for the charging depot",
    "the photo caption names the wrong bridge, it is the one north of the station",
    "the police statement contradicts what the witnesses told the paper",
    "the heat wave shows that the town needs more trees and shade, not more car parks",
    "the vaccination centre was well organised and the staff were very kind",
    "the housing plan looks nice on paper but the timeline is unrealistic",
]
_CLOSERS = [
    "Looking forward to the follow-up.", "Please keep covering this.", "Just my two cents.", "Shame on them.",
    "Who is going to pay for all of this?", "We deserve better.", "Thank you.", "Let's see what happens in May.",
    "I'll be at the next council meeting.", "Anyone else remember the last time this happened?", "",
]
_SPAM = [
    "Earn $500 a day from home!!! Visit http://cheap-income.example.biz now",
    "Best prices on watches and bags at www.replica-deals.example.com, free shipping",
    "I made 3000 dollars last week working online, check bit.ly/xyz-work and http://t.example/ab",
    "CASINO BONUS 200% sign up today http://casino.example.net/promo http://casino.example.net/vip",
    "Buy followers and likes cheap, DM me or visit http://followers.example.org",
]
_RUDE = [
    "What an idiot wrote this garbage?", "The mayor is a clown and everyone who voted for him is stupid.",
    "Shut up, you don't know anything about this town.", "This paper is trash and so are your readers.",
]


def comment_texts(count: int, seed: int = 0) -> list[str]:
    """Return ``count`` distinct comments: mostly ordinary ones, some spam (links), some rude."""
    rng = random.Random(seed)
    texts: list[str] = []
    seen: set[str] = set()
    while len(texts) < count:
        roll = rng.random()
        if roll < 0.05:
            text = f"{rng.choice(_SPAM)} {rng.choice(_CLOSERS)}"
        elif roll < 0.10:
            text = f"{rng.choice(_RUDE)} {rng.choice(_MIDDLES).capitalize()}."
        else:
            middles = rng.sample(_MIDDLES, rng.choice((1, 1, 2, 3)))
            body = " Also, ".join(m for m in middles)
            text = f"{rng.choice(_OPENERS)} {body[0].upper() + body[1:]}. {rng.choice(_CLOSERS)}"
        text = text.strip()
        if text not in seen:
            seen.add(text)
            texts.append(text)
        elif len(seen) > 0.9 * count and rng.random() < 0.5:
            # The combinations can run out; number repeats like people quoting themselves do.
            text = f"{text} (edit {len(texts)})"
            seen.add(text)
            texts.append(text)
    return texts


_FIRST = ["Ann", "Ben", "Chloe", "Dev", "Elif", "Farid", "Greta", "Hugo", "Ines", "Jon", "Kemal", "Lena", "Mia", "Noah", "Olga", "Pia"]
_LAST = ["Smith", "Meyer", "Rossi", "Novak", "Garcia", "Kowalski", "Jensen", "Dubois", "Silva", "Yilmaz", "Brown", "Lund"]
_DOMAINS = ["example.org", "example.com", "mail.example.net", "example.de"]
_SECTIONS = ["politics", "local", "sport", "culture", "business", "opinion"]
_AGENTS = ["Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Safari/604.1",
           "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/126.0 Safari/537.36"]


def _lua_list(values: list[str], quote_json: bool) -> str:
    items = []
    for value in values:
        literal = json.dumps(value) if quote_json else value
        if "]==]" in literal:
            raise ValueError("a text contains the Lua long-bracket terminator")
        items.append(f"[==[{literal}]==]")
    return "{\n  " + ",\n  ".join(items) + "\n}"


def lua_script(*, key: str, tag: str, ids_path: Path, texts: list[str], seed: int) -> str:
    """A wrk script: varied POST bodies, status counts and answered external ids per thread."""
    header = "Bearer " + key
    return f"""-- generated by benchmarks/load.py; wrk runs one Lua state per thread plus a main one
wrk.method = "POST"
wrk.path = "{PATH}"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = [==[{header}]==]

local TAG = "{tag}"
local IDS_PATH = [==[{ids_path}]==]
local SEED = {seed}
local AUTHORS = {AUTHORS}
local ARTICLES = {ARTICLES}
local texts = {_lua_list(texts, True)}
local first = {_lua_list(_FIRST, False)}
local last = {_lua_list(_LAST, False)}
local domains = {_lua_list(_DOMAINS, False)}
local sections = {_lua_list(_SECTIONS, False)}
local agents = {_lua_list(_AGENTS, False)}

-- main state: one entry per thread, read back in done()
local threads = {{}}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

-- thread state
sent = 0
counts = {{}}
answered = {{}}

function init(args)
  math.randomseed(SEED * 1000 + (tid or 0))
end

local function body_for(n)
  local text = texts[math.random(#texts)]
  local a = math.random(0, AUTHORS - 1)
  local name = first[(a % #first) + 1] .. " " .. last[(math.floor(a / #first) % #last) + 1]
  local email = string.format("reader%d@%s", a, domains[(a % #domains) + 1])
  local ip = string.format("10.%d.%d.%d", math.floor(a / 65536) % 256, math.floor(a / 256) % 256, a % 256)
  local art = math.random(1, ARTICLES)
  return string.format(
    '{{"text":%s,"author":{{"name":"%s","email":"%s","ip":"%s","user_agent":"%s"}},' ..
    '"article":{{"id":"%d","url":"https://news.example.org/articles/%d","title":"Article %d","section":"%s"}},' ..
    '"external_id":"%s-%d-%d"}}',
    text, name, email, ip, agents[(a % #agents) + 1], art, art, art, sections[(art % #sections) + 1], TAG, tid, n)
end

function request()
  sent = sent + 1
  return wrk.format(nil, nil, nil, body_for(sent))
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
  local id = body and string.match(body, '"external_id":%s*"([^"]+)"')
  if id then answered[#answered + 1] = status .. " " .. id end
end

function done(summary, latency, requests)
  local f = assert(io.open(IDS_PATH, "w"))
  local status = {{}}
  for _, t in ipairs(threads) do
    f:write(string.format("sent %d %d\\n", t:get("tid"), t:get("sent") or 0))
    for code, n in pairs(t:get("counts") or {{}}) do status[code] = (status[code] or 0) + n end
    for _, line in ipairs(t:get("answered") or {{}}) do f:write(line, "\\n") end
  end
  f:close()
  local parts = {{}}
  for code, n in pairs(status) do parts[#parts + 1] = string.format('"%d":%d', code, n) end
  local e = summary.errors
  io.write(string.format(
    'LOADJSON {{"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}},' ..
    '"latency_us":{{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}},"status":{{%s}}}}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    table.concat(parts, ",")))
end
"""


def locust_file(*, key: str, tag: str, ids_path: Path, summary_path: Path, texts: list[str], seed: int) -> str:
    """The fallback: a headless locust user posting the same kind of bodies as the wrk script."""
    return f'''# generated by benchmarks/load.py (fallback when wrk is missing)
import collections, itertools, json, random, re
from locust import FastHttpUser, constant, events, task

KEY, TAG, IDS_PATH, SUMMARY_PATH = {key!r}, {tag!r}, {str(ids_path)!r}, {str(summary_path)!r}
TEXTS = {texts!r}
FIRST, LAST, DOMAINS, SECTIONS, AGENTS = {_FIRST!r}, {_LAST!r}, {_DOMAINS!r}, {_SECTIONS!r}, {_AGENTS!r}
rng = random.Random({seed})
counter = itertools.count(1)
sent = [0]
counts = collections.Counter()
answered = []
ID = re.compile(r'"external_id":\\s*"([^"]+)"')


def body_for(n):
    a = rng.randrange({AUTHORS})
    art = rng.randint(1, {ARTICLES})
    return {{
        "text": rng.choice(TEXTS),
        "author": {{"name": FIRST[a % len(FIRST)] + " " + LAST[(a // len(FIRST)) % len(LAST)],
                   "email": f"reader{{a}}@{{DOMAINS[a % len(DOMAINS)]}}",
                   "ip": f"10.{{a // 65536 % 256}}.{{a // 256 % 256}}.{{a % 256}}", "user_agent": AGENTS[a % len(AGENTS)]}},
        "article": {{"id": str(art), "url": f"https://news.example.org/articles/{{art}}", "title": f"Article {{art}}",
                    "section": SECTIONS[art % len(SECTIONS)]}},
        "external_id": f"{{TAG}}-1-{{n}}",
    }}


class Poster(FastHttpUser):
    wait_time = constant(0)

    @task
    def post(self):
        n = next(counter)
        sent[0] = max(sent[0], n)
        headers = {{"Authorization": "Bearer " + KEY, "Content-Type": "application/json"}}
        with self.client.post("{PATH}", data=json.dumps(body_for(n)), headers=headers, catch_response=True) as response:
            code = response.status_code or 0
            counts[code] += 1
            match = ID.search(response.text or "") if code else None
            if match:
                answered.append(f"{{code}} {{match.group(1)}}")
            if 200 <= code < 300:
                response.success()
            else:
                response.failure(f"status {{code}}")


@events.quitting.add_listener
def write_summary(environment, **_kwargs):
    total = environment.stats.total
    with open(IDS_PATH, "w") as handle:
        handle.write(f"sent 1 {{sent[0]}}\\n")
        handle.writelines(line + "\\n" for line in answered)
    with open(SUMMARY_PATH, "w") as handle:
        json.dump({{
            "requests": total.num_requests, "rps": total.total_rps,
            "socket_errors": counts.get(0, 0), "status": {{str(k): v for k, v in counts.items() if k}},
            "latency_ms": {{"p50": total.get_response_time_percentile(0.5), "p90": total.get_response_time_percentile(0.9),
                           "p99": total.get_response_time_percentile(0.99), "max": total.max_response_time,
                           "mean": total.avg_response_time}},
        }}, handle)
'''


# --- processes and ports ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def require_loopback(url: str, what: str) -> None:
    host = urlsplit(url).hostname
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SystemExit(f"{what} must point at a loopback address (got host {host!r}); this benchmark never leaves 127.0.0.1")


def clean_env(**settings: str) -> dict[str, str]:
    """The parent's environment without MODERATION_* settings (a stray config must not leak in), plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODERATION_")}
    env.update(settings)
    return env


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class Server:
    """A server subprocess in its own process group; ``stop`` is SIGTERM, wait, then SIGKILL of that group."""

    def __init__(self, args: list[str], *, env: dict[str, str], cwd: Path, log: Path):
        self.log = log
        self._handle = open(log, "wb")
        self.proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=self._handle, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, port: int, health: str | None, timeout: float) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode} before it was ready:\n{log_tail(self.log)}")
            try:
                if health:
                    with urllib.request.urlopen(f"http://{LOOPBACK}:{port}{health}", timeout=2) as answer:
                        if answer.status == 200:
                            return time.monotonic() - start
                else:
                    with socket.create_connection((LOOPBACK, port), timeout=1):
                        return time.monotonic() - start
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server not ready after {timeout:.0f} s:\n{log_tail(self.log)}")

    def wait_workers(self, port: int, workers: int, timeout: float) -> float:
        """Wait until every gunicorn worker has loaded the model: /healthz answers as soon as the
        first one has, and the others would otherwise load theirs during the measurement. Each
        live worker reports moderation_model_info{pid=...} in /metrics (multiprocess "liveall")."""
        start = time.monotonic()
        pids: set[str] = set()
        while time.monotonic() - start < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{log_tail(self.log)}")
            try:
                with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/metrics", timeout=5) as answer:
                    page = answer.read().decode()
                pids = set(re.findall(r'^moderation_model_info\{[^}]*pid="(\d+)"', page, re.M))
                if len(pids) >= workers:
                    return time.monotonic() - start
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.5)
        raise RuntimeError(f"only {len(pids)} of {workers} workers loaded the model after {timeout:.0f} s:\n{log_tail(self.log)}")

    def stop(self, timeout: float = 30) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        try:  # leftover workers of this server only (its own session / process group)
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.proc.poll() is None:
            self.proc.wait(timeout=10)
        self._handle.close()
        return self.proc.returncode


def run_checked(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> str:
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if done.returncode:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


# --- load generators --------------------------------------------------------------------------


def read_ids(path: Path) -> dict:
    """Parse the ids file: sent counts per thread, answered external ids by status."""
    sent: dict[int, int] = {}
    answered: dict[str, int] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            first, _, rest = line.partition(" ")
            if first == "sent":
                tid, count = rest.split()
                sent[int(tid)] = int(count)
            elif rest:
                answered[rest] = int(first)
    return {"sent": sent, "answered": answered}


def run_wrk(*, url: str, script: Path, threads: int, connections: int, duration: int, timeout_s: int, cwd: Path) -> dict:
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", f"--timeout={timeout_s}s", "--latency", "-s", str(script), url]
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=duration + 60)
    line = next((l for l in done.stdout.splitlines() if l.startswith("LOADJSON ")), None)
    if done.returncode or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    raw = json.loads(line[len("LOADJSON "):])
    seconds = raw["duration_us"] / 1e6
    errors = raw["errors"]
    return {
        "tool": "wrk",
        "requests": raw["requests"],
        "seconds": seconds,
        "requests_per_second": raw["requests"] / seconds if seconds else 0.0,
        "latency_ms": {k: v / 1000 for k, v in raw["latency_us"].items()},
        "status": {int(k): v for k, v in raw["status"].items()},
        "socket_errors": {k: errors[k] for k in ("connect", "read", "write", "timeout")},
        "wrk_output": "\n".join(l for l in done.stdout.splitlines() if not l.startswith("LOADJSON ")),
    }


def run_locust(*, command: list[str], url: str, locustfile: Path, summary: Path, connections: int, duration: int, cwd: Path) -> dict:
    args = [*command, "-f", str(locustfile), "--headless", "-u", str(connections), "-r", str(connections),
            "-t", f"{duration}s", "--host", url, "--stop-timeout", "5", "--only-summary", "--loglevel", "WARNING"]
    start = time.monotonic()
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=duration + 60)
    seconds = time.monotonic() - start
    if not summary.is_file():
        raise RuntimeError(f"locust failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    raw = json.loads(summary.read_text())
    return {
        "tool": "locust",
        "requests": raw["requests"],
        "seconds": seconds,
        "requests_per_second": raw["rps"],
        "latency_ms": raw["latency_ms"],
        "status": {int(k): v for k, v in raw["status"].items()},
        "socket_errors": {"connect_or_read": raw["socket_errors"]},
    }


class Load:
    """Write a generator script for one phase and run it against one port."""

    def __init__(self, args, work: Path, texts: list[str]):
        self.args, self.work, self.texts = args, work, texts
        self.tool = args.tool
        if self.tool == "auto":
            self.tool = "wrk" if shutil.which("wrk") else "locust"
        if self.tool == "wrk" and not shutil.which("wrk"):
            raise SystemExit("wrk is not installed: apt-get update && apt-get install -y wrk (or use --tool locust)")
        self.locust_command = shlex.split(args.locust) if args.locust else None
        if self.tool == "locust" and self.locust_command is None:
            if shutil.which("locust"):
                self.locust_command = [shutil.which("locust")]
            else:
                import importlib.util

                if importlib.util.find_spec("locust") is None:
                    raise SystemExit("neither wrk nor locust found: apt-get install -y wrk, or pip install locust")
                self.locust_command = [sys.executable, "-m", "locust"]

    def run(self, *, name: str, port: int, key: str, tag: str, duration: int, seed: int) -> tuple[dict, dict]:
        ids_path = self.work / f"{name}-{tag}.ids"
        url = f"http://{LOOPBACK}:{port}"
        if self.tool == "wrk":
            script = self.work / f"{name}-{tag}.lua"
            script.write_text(lua_script(key=key, tag=tag, ids_path=ids_path, texts=self.texts, seed=seed))
            result = run_wrk(url=url + PATH, script=script, threads=self.args.threads, connections=self.args.connections,
                             duration=duration, timeout_s=self.args.request_timeout, cwd=self.work)
        else:
            summary = self.work / f"{name}-{tag}.summary.json"
            script = self.work / f"locust_{name}_{tag}.py"
            script.write_text(locust_file(key=key, tag=tag, ids_path=ids_path, summary_path=summary, texts=self.texts, seed=seed))
            result = run_locust(command=self.locust_command, url=url, locustfile=script, summary=summary,
                                connections=self.args.connections, duration=duration, cwd=self.work)
        return result, read_ids(ids_path)


# --- the targets ------------------------------------------------------------------------------


def count_stored(url: str, schema: str | None, tag: str) -> dict:
    """Rows in the database: all comments, and external ids and statuses of one phase's comments."""
    from sqlalchemy import text

    from moderation.db import make_engine

    engine = make_engine(url, schema)
    try:
        with engine.connect() as connection:
            total = connection.scalar(text("SELECT count(*) FROM comments"))
            audit = connection.scalar(text("SELECT count(*) FROM audit_log"))
            pattern = {"pattern": tag + "-%"}
            ids = set(connection.scalars(text("SELECT external_id FROM comments WHERE external_id LIKE :pattern"), pattern))
            statuses = dict(connection.execute(
                text("SELECT status, count(*) FROM comments WHERE external_id LIKE :pattern GROUP BY status"), pattern).all())
    finally:
        engine.dispose()
    return {"total_rows": total, "audit_rows": audit, "ids": ids, "statuses": statuses}


def reconcile(load: dict, ids: dict, stored: dict, tag: str) -> dict:
    """Match stored rows with 201 answers by external id; unanswered in-flight requests explain extras."""
    created = {i for i, code in ids["answered"].items() if code == 201}
    answered = set(ids["answered"])
    sent = {f"{tag}-{tid}-{n}" for tid, count in ids["sent"].items() for n in range(1, count + 1)}
    unanswered = sent - answered
    missing = created - stored["ids"]
    extra = stored["ids"] - created
    unexplained = extra - unanswered
    return {
        "responses_201": load["status"].get(201, 0),
        "stored_rows": len(stored["ids"]),
        "stored_equals_201": len(stored["ids"]) == load["status"].get(201, 0),
        "answered_201_ids": len(created),
        "missing_201_rows": len(missing),
        "extra_rows": len(extra),
        "extra_rows_unanswered_at_cutoff": len(extra & unanswered),
        "extra_rows_unexplained": len(unexplained),
        "sent_unanswered_at_cutoff": len(unanswered),
        "consistent": not missing and not unexplained,
        "stored_by_status": stored["statuses"],
        "total_rows_incl_warmup": stored["total_rows"],
        "audit_rows_incl_warmup": stored["audit_rows"],
    }


def measure(load: Load, name: str, port: int, key: str, args) -> dict:
    """Warm up (model caches, both workers' first requests), then the measured run."""
    warm, warm_ids = load.run(name=name, port=port, key=key, tag="w", duration=args.warmup, seed=1) if args.warmup else ({}, None)
    load_before = os.getloadavg()
    result, ids = load.run(name=name, port=port, key=key, tag="m", duration=args.duration, seed=2)
    result["loadavg_1m_before_after"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
    result["warmup"] = {k: warm.get(k) for k in ("requests", "requests_per_second", "status")} if warm else None
    result["_ids"] = ids
    return result


def finish(result: dict, count) -> dict:
    ids = result.pop("_ids")
    if count is not None:
        result["rows"] = reconcile(result, ids, count("m"), "m")
    return result


def run_bare(load: Load, args, work: Path) -> dict:
    folder = work / "bare"
    folder.mkdir()
    (folder / "bare_app.py").write_text(BARE_APP)
    port = free_port()
    server = Server([sys.executable, "-m", "gunicorn", "--workers", str(args.workers), "--bind", f"{LOOPBACK}:{port}",
                     "--access-logfile", "-", "--chdir", str(folder), "bare_app:app"],
                    env=clean_env(), cwd=folder, log=folder / "server.log")
    try:
        startup = server.wait_ready(port, None, args.start_timeout)
        result = measure(load, "bare", port, "not-checked", args)
    finally:
        code = server.stop()
    result["startup_seconds"], result["server_exit_code"] = startup, code
    return finish(result, None)


def run_moderation(load: Load, args, work: Path, name: str, database_url: str | None, schema: str | None) -> dict:
    instance = work / name
    instance.mkdir()
    metrics_dir = instance / "prometheus"
    metrics_dir.mkdir()
    settings = {
        "MODERATION_INSTANCE_DIR": str(instance),
        "MODERATION_MODEL_DIR": str(args.model),
        "MODERATION_RATE_LIMIT": "1000000 per minute",
        "MODERATION_RATELIMIT_STORAGE_URI": args.ratelimit_storage,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    if database_url:
        settings["MODERATION_DATABASE_URL"] = database_url
    if schema:
        settings["MODERATION_DATABASE_SCHEMA"] = schema
    env = clean_env(**settings)
    url = database_url or f"sqlite:///{instance / 'moderation.db'}"
    command = [sys.executable, "-m", "moderation"]
    run_checked([*command, "db", "upgrade"], env, instance)
    key = run_checked([*command, "keys", "create", "--name", f"load-{name}", "--role", "site"], env, instance).strip().splitlines()[-1]
    port = free_port()
    server = Server([*command, "serve", "--host", LOOPBACK, "--port", str(port), "--workers", str(args.workers), "--model", str(args.model)],
                    env=env, cwd=instance, log=instance / "server.log")
    try:
        startup = server.wait_ready(port, "/healthz", args.start_timeout)
        startup += server.wait_workers(port, args.workers, args.start_timeout)
        result = measure(load, name, port, key, args)
    finally:
        code = server.stop()  # every in-flight request has finished (or died) before rows are counted
    result["startup_seconds"], result["server_exit_code"] = startup, code
    return finish(result, lambda tag: count_stored(url, schema, tag))


def run_postgres(load: Load, args, work: Path) -> dict:
    from sqlalchemy import text

    from moderation.db import make_engine

    schema = f"bench_load_{uuid.uuid4().hex[:10]}"
    admin = make_engine(args.postgres_url)
    try:
        with admin.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
        try:
            result = run_moderation(load, args, work, "postgres", args.postgres_url, schema)
            result["schema"] = schema
            return result
        finally:
            with admin.begin() as connection:
                connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    finally:
        admin.dispose()


# --- report -----------------------------------------------------------------------------------


def _fmt(value, spec: str = "") -> str:
    return "-" if value is None else format(value, spec)


def table(results: dict) -> str:
    header = f"{'target':9} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'non-2xx':>7} {'sock err':>8} {'201s':>6} {'stored':>6}  stored==201s"
    lines = [header, "-" * len(header)]
    for name, r in results.items():
        if "error" in r:
            lines.append(f"{name:9} FAILED: {r['error'].splitlines()[0]}")
            continue
        non2xx = sum(v for k, v in r["status"].items() if not 200 <= k < 300)
        rows = r.get("rows")
        if rows:
            verdict = "yes" if rows["stored_equals_201"] else "NO"
            if not rows["stored_equals_201"] and rows["consistent"]:
                verdict += f" (+{rows['extra_rows_unanswered_at_cutoff']} in flight at cutoff, 0 lost)"
            elif rows["missing_201_rows"]:
                verdict += f" ({rows['missing_201_rows']} answered 201 but not stored)"
            elif rows["extra_rows_unexplained"]:
                verdict += f" ({rows['extra_rows_unexplained']} rows without an answer)"
        else:
            verdict = "-"
        lines.append(
            f"{name:9} {r['requests_per_second']:8.1f} {r['latency_ms']['p50']:7.2f} {r['latency_ms']['p99']:7.2f} "
            f"{non2xx:7d} {sum(r['socket_errors'].values()):8d} {_fmt(rows and rows['responses_201']):>6} "
            f"{_fmt(rows and rows['stored_rows']):>6}  {verdict}"
        )
    return "\n".join(lines)


def checks(results: dict) -> list[dict]:
    bare = results.get("bare")
    bare_rps = bare["requests_per_second"] if bare and "error" not in bare else None
    out = []
    for name in ("sqlite", "postgres"):
        r = results.get(name)
        if not r or "error" in r:
            continue
        non2xx = sum(v for k, v in r["status"].items() if not 200 <= k < 300)
        errors = non2xx + sum(r["socket_errors"].values())
        ratio = r["requests_per_second"] / bare_rps if bare_rps else None
        out += [
            {"target": name, "measure": "throughput vs bare Flask", "value": ratio, "goal": f">= {THROUGHPUT_TARGET:.0%}",
             "met": None if ratio is None else ratio >= THROUGHPUT_TARGET},
            {"target": name, "measure": "p99 latency (ms)", "value": r["latency_ms"]["p99"], "goal": f"<= {P99_TARGET_MS:g}",
             "met": r["latency_ms"]["p99"] <= P99_TARGET_MS},
            {"target": name, "measure": "errors (non-2xx + socket)", "value": errors, "goal": "0", "met": errors == 0},
            # Met when every 201 is stored and every other row is a request wrk cut off mid-flight;
            # the exact equality is reported beside it (and in the table).
            {"target": name, "measure": "stored rows == 201 answers", "value": f"{r['rows']['stored_rows']} vs {r['rows']['responses_201']}",
             "goal": "equal", "met": r["rows"]["consistent"], "exactly_equal": r["rows"]["stored_equals_201"],
             "note": None if r["rows"]["stored_equals_201"] else
             (f"not exactly: +{r['rows']['extra_rows']} rows from requests in flight when wrk stopped; no 201 lost"
              if r["rows"]["consistent"] else
              f"{r['rows']['missing_201_rows']} answered 201 but not stored, {r['rows']['extra_rows_unexplained']} stored without a request in flight")},
        ]
    return out


def check_lines(found: list[dict]) -> str:
    lines = []
    for c in found:
        value = c["value"]
        shown = f"{value:.0%}" if c["measure"].startswith("throughput") and value is not None else (
            f"{value:.2f}" if isinstance(value, float) else str(value))
        met = {True: "met", False: "NOT met", None: "n/a"}[c["met"]]
        lines.append(f"{c['target']:9} {c['measure']:28} {shown:>14}  goal {c['goal']:8} {met}" + (f"  ({c['note']})" if c.get("note") else ""))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=20, help="measured seconds per target (default 20)")
    parser.add_argument("--warmup", type=int, default=5, help="warm-up seconds per target before measuring (default 5; 0: none)")
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated subset of bare,sqlite,postgres")
    parser.add_argument("--model", type=Path, default=ROOT / "instance" / "model", help="model bundle (default instance/model)")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="PostgreSQL database on loopback; a fresh schema is made and dropped")
    parser.add_argument("--ratelimit-storage", default="memory://", help="RATELIMIT_STORAGE_URI for the servers, e.g. redis://127.0.0.1:6379")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per server (default 2)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections (default 8)")
    parser.add_argument("--request-timeout", type=int, default=2, help="wrk per-request timeout in seconds (default 2)")
    parser.add_argument("--start-timeout", type=float, default=90, help="seconds to wait for a server to become ready")
    parser.add_argument("--tool", choices=("auto", "wrk", "locust"), default="auto", help="load generator (auto: wrk, else locust)")
    parser.add_argument("--locust", help="command that runs locust (default: `locust` on PATH or python -m locust)")
    parser.add_argument("--texts", type=int, default=3000, help="distinct comment texts to draw from (default 3000)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "load.json")
    args = parser.parse_args()

    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    if unknown := set(targets) - set(TARGETS):
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}")
    if not 1 <= args.duration <= 600 or not 0 <= args.warmup <= 60:
        parser.error("--duration must be 1..600 s and --warmup 0..60 s")
    if not 1 <= args.connections <= 256 or not 1 <= args.threads <= args.connections:
        parser.error("--connections must be 1..256 and --threads 1..connections")
    args.model = args.model.resolve()
    if not (args.model / "manifest.json").is_file():
        parser.error(f"no model bundle at {args.model}")
    if "postgres" in targets:
        require_loopback(args.postgres_url, "--postgres-url")
    if not args.ratelimit_storage.startswith("memory://"):
        require_loopback(args.ratelimit_storage, "--ratelimit-storage")

    def interrupted(signum, _frame):
        raise SystemExit(128 + signum)  # unwind through every finally: servers stopped, schema dropped, temp removed

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    work = Path(tempfile.mkdtemp(prefix="moderation-load-"))
    results: dict[str, dict] = {}
    started = time.time()
    try:
        load = Load(args, work, comment_texts(args.texts))
        runners = {"bare": lambda: run_bare(load, args, work), "sqlite": lambda: run_moderation(load, args, work, "sqlite", None, None),
                   "postgres": lambda: run_postgres(load, args, work)}
        for name in targets:
            print(f"[{name}] starting (warm-up {args.warmup} s, measure {args.duration} s, {load.tool}, "
                  f"{args.connections} connections, {args.workers} workers)", file=sys.stderr, flush=True)
            try:
                results[name] = runners[name]()
            except (RuntimeError, OSError, subprocess.SubprocessError) as error:
                results[name] = {"error": str(error)}
                print(f"[{name}] FAILED: {error}", file=sys.stderr, flush=True)
            except Exception as error:  # a database problem etc.: report it, go on with the other targets
                results[name] = {"error": f"{type(error).__name__}: {error}"}
                print(f"[{name}] FAILED: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    found = checks(results)
    print()
    print(table(results))
    print()
    print(check_lines(found))
    tool = next((r["tool"] for r in results.values() if "tool" in r), None)
    wrk_version = None
    if shutil.which("wrk"):
        wrk_version = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.splitlines()[:1]
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "loadavg_at_end": [round(x, 2) for x in os.getloadavg()]},
        "settings": {"tool": tool, "wrk_version": wrk_version[0] if wrk_version else None, "duration_s": args.duration,
                     "warmup_s": args.warmup, "threads": args.threads, "connections": args.connections, "workers": args.workers,
                     "model": str(args.model), "ratelimit_storage": args.ratelimit_storage, "distinct_texts": args.texts},
        "elapsed_s": round(time.time() - started, 1),
        "targets": {name: {k: ({str(c): n for c, n in v.items()} if k == "status" else v) for k, v in r.items()} for name, r in results.items()},
        "checks": found,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nwritten to {args.out}")
    if any("error" in r for r in results.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
