"""Peak and soak of ``POST /api/v1/comments`` (issue 7), beside the bare-Flask ceiling.

    python benchmarks/peak_soak.py [--targets bare,sqlite,postgres] [--levels 1,2,4,8,16] [--step 15]
                                   [--soak 600] [--soak-target sqlite] [--out benchmarks/results/peak_soak.json]

Peak: for each target, wrk runs ``--step`` seconds at each concurrency level (closed loop);
the peak is the highest throughput among the levels whose p99 stays at or under 50 ms.
Soak: ``--soak`` seconds at 70 % of the soak target's peak, paced by a token bucket in a
pool of client threads (open loop, so a slow server shows as latency, not as a lower rate),
recording p50/p99 and errors per minute and the RSS of every gunicorn worker at the start
and the end. Same servers, settings and texts as benchmarks/load.py (2 workers, loopback,
rate limits out of the way). Prints tables and writes JSON.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import load as bench  # noqa: E402  (benchmarks/load.py: servers, wrk, texts)

P99_LIMIT_MS = 50.0
SOAK_SHARE = 0.7


def worker_rss_mb(master_pid: int) -> dict[int, float]:
    """RSS of each gunicorn worker (children of the master, found through /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("PPid", "").strip() == str(master_pid) and "VmRSS" in fields:
            found[int(entry.name)] = int(fields["VmRSS"].split()[0]) / 1024
    return found


def gunicorn_master(server: bench.Server) -> int:
    """`moderation serve` execs gunicorn, so the server process is the master (the bare app is gunicorn itself)."""
    return server.proc.pid


class Started:
    """A running target: its port, site key, server handle and a row counter (None for bare)."""

    def __init__(self, name: str, args, work: Path):
        self.name, self.work = name, work
        self.schema = None
        self.admin = None
        folder = work / name
        folder.mkdir()
        self.port = bench.free_port()
        if name == "bare":
            (folder / "bare_app.py").write_text(bench.BARE_APP)
            self.key = "not-checked"
            self.server = bench.Server([sys.executable, "-m", "gunicorn", "--workers", str(args.workers), "--bind", f"{bench.LOOPBACK}:{self.port}",
                                        "--chdir", str(folder), "bare_app:app"], env=bench.clean_env(), cwd=folder, log=folder / "server.log")
            self.server.wait_ready(self.port, None, args.start_timeout)
            self.url = None
            return
        metrics_dir = folder / "prometheus"
        metrics_dir.mkdir()
        settings = {"MODERATION_INSTANCE_DIR": str(folder), "MODERATION_MODEL_DIR": str(args.model),
                    "MODERATION_RATE_LIMIT": "1000000 per minute", "MODERATION_RATELIMIT_STORAGE_URI": "memory://",
                    "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
        if name == "postgres":
            from sqlalchemy import text

            from moderation.db import make_engine

            self.schema = f"bench_soak_{uuid.uuid4().hex[:10]}"
            self.admin = make_engine(args.postgres_url)
            with self.admin.begin() as connection:
                connection.execute(text(f"CREATE SCHEMA {self.schema}"))
            settings.update(MODERATION_DATABASE_URL=args.postgres_url, MODERATION_DATABASE_SCHEMA=self.schema)
        env = bench.clean_env(**settings)
        command = [sys.executable, "-m", "moderation"]
        bench.run_checked([*command, "db", "upgrade"], env, folder)
        self.key = bench.run_checked([*command, "keys", "create", "--name", f"soak-{name}", "--role", "site"], env, folder).strip().splitlines()[-1]
        self.server = bench.Server([*command, "serve", "--host", bench.LOOPBACK, "--port", str(self.port), "--workers", str(args.workers),
                                    "--model", str(args.model)], env=env, cwd=folder, log=folder / "server.log")
        self.server.wait_ready(self.port, "/healthz", args.start_timeout)
        self.server.wait_workers(self.port, args.workers, args.start_timeout)
        self.url = args.postgres_url if name == "postgres" else f"sqlite:///{folder / 'moderation.db'}"

    def stop(self) -> None:
        self.server.stop()
        if self.admin is not None:
            from sqlalchemy import text

            with self.admin.begin() as connection:
                connection.execute(text(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE"))
            self.admin.dispose()


def sweep(target: Started, args, load: bench.Load) -> dict:
    """wrk at each concurrency level; the peak is the best rate with p99 within the limit."""
    load.args.connections, load.args.threads = 2, 2
    load.run(name=target.name, port=target.port, key=target.key, tag="warm", duration=5, seed=9)  # caches and both workers warm
    levels = []
    for n, connections in enumerate(args.levels):
        load.args.connections = connections
        load.args.threads = min(2, connections)
        result, _ = load.run(name=target.name, port=target.port, key=target.key, tag=f"c{connections}", duration=args.step, seed=10 + n)
        errors = sum(v for k, v in result["status"].items() if not 200 <= k < 300) + sum(result["socket_errors"].values())
        levels.append({"connections": connections, "requests_per_second": result["requests_per_second"],
                       "p50_ms": result["latency_ms"]["p50"], "p99_ms": result["latency_ms"]["p99"], "errors": errors})
        print(f"  {target.name:9s} c={connections:3d}  {result['requests_per_second']:8.1f} req/s  p50 {result['latency_ms']['p50']:6.1f} ms"
              f"  p99 {result['latency_ms']['p99']:7.1f} ms  errors {errors}", flush=True)
    within = [level for level in levels if level["p99_ms"] <= P99_LIMIT_MS and level["errors"] == 0]
    peak = max(within, key=lambda level: level["requests_per_second"]) if within else None
    return {"levels": levels, "peak": peak}


def soak(target: Started, rate: float, seconds: int, texts: list[str], clients: int = 8) -> dict:
    """Post at ``rate`` per second for ``seconds`` from ``clients`` threads; per-minute latency, errors and worker RSS."""
    lock = threading.Lock()
    minutes: dict[int, dict] = {}
    sent = [0]
    start = time.monotonic()
    deadline = start + seconds
    interval = clients / rate  # each client's pace

    def client(index: int) -> None:
        connection = http.client.HTTPConnection(bench.LOOPBACK, target.port, timeout=10)
        next_at = start + index * interval / clients
        n = 0
        while True:
            now = time.monotonic()
            if now >= deadline:
                break
            if now < next_at:
                time.sleep(next_at - now)
            next_at += interval
            n += 1
            body = json.dumps({"text": texts[(index * 7919 + n) % len(texts)],
                               "author": {"email": f"soak{index}-{n}@example.org", "ip": f"10.{index}.{(n // 250) % 250}.{n % 250}"},
                               "article": {"id": f"a{n % 50}"}, "external_id": f"soak-{index}-{n}"})
            began = time.monotonic()
            try:
                connection.request("POST", bench.PATH, body=body, headers={"Authorization": f"Bearer {target.key}", "Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                status = 0
                connection.close()
                connection = http.client.HTTPConnection(bench.LOOPBACK, target.port, timeout=10)
            elapsed = (time.monotonic() - began) * 1000
            minute = int((began - start) // 60)
            with lock:
                sent[0] += 1
                bucket = minutes.setdefault(minute, {"latencies": [], "errors": 0, "created": 0})
                bucket["latencies"].append(elapsed)
                bucket["created"] += status == 201
                bucket["errors"] += status not in (200, 201)
        connection.close()

    rss_start = worker_rss_mb(gunicorn_master(target.server))
    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rss_end = worker_rss_mb(gunicorn_master(target.server))
    rows = []
    for minute in sorted(minutes):
        latencies = sorted(minutes[minute]["latencies"])
        pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
        rows.append({"minute": minute + 1, "requests": len(latencies), "created": minutes[minute]["created"],
                     "errors": minutes[minute]["errors"], "p50_ms": pick(0.50), "p99_ms": pick(0.99)})
    return {"target_rate": rate, "seconds": seconds, "sent": sent[0], "achieved_rate": sent[0] / seconds, "minutes": rows,
            "worker_rss_mb_start": rss_start, "worker_rss_mb_end": rss_end}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", default="bare,sqlite,postgres")
    parser.add_argument("--levels", default="1,2,4,8,16", help="concurrency levels of the sweep")
    parser.add_argument("--step", type=int, default=15, help="seconds per level")
    parser.add_argument("--soak", type=int, default=600, help="soak seconds (0: no soak)")
    parser.add_argument("--soak-target", default="sqlite")
    parser.add_argument("--model", type=Path, default=ROOT / "instance" / "model")
    parser.add_argument("--postgres-url", default=bench.DEFAULT_POSTGRES_URL)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--start-timeout", type=float, default=90)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "peak_soak.json")
    args = parser.parse_args()
    args.levels = [int(v) for v in args.levels.split(",")]
    texts = bench.comment_texts(3000)
    results = {"machine": {"cpus": os.cpu_count(), "loadavg_before": os.getloadavg()}, "p99_limit_ms": P99_LIMIT_MS, "targets": {}}
    with tempfile.TemporaryDirectory(prefix="peak-soak-") as temp:
        work = Path(temp)
        load = bench.Load(SimpleNamespace(tool="wrk", locust=None, threads=2, connections=8, request_timeout=2), work, texts)
        for name in args.targets.split(","):
            target = Started(name, args, work)
            try:
                print(f"{name}: sweep", flush=True)
                results["targets"][name] = sweep(target, args, load)
                peak = results["targets"][name]["peak"]
                if name == args.soak_target and args.soak and peak:
                    rate = SOAK_SHARE * peak["requests_per_second"]
                    print(f"{name}: soak {args.soak} s at {rate:.0f} req/s (70 % of {peak['requests_per_second']:.0f})", flush=True)
                    results["targets"][name]["soak"] = soak(target, rate, args.soak, texts)
            finally:
                target.stop()
    results["machine"]["loadavg_after"] = os.getloadavg()
    print("\n| target | peak req/s (p99 <= 50 ms) | at connections | p99 ms |\n|---|---|---|---|")
    for name, found in results["targets"].items():
        peak = found["peak"]
        print(f"| {name} | {peak['requests_per_second']:.0f} | {peak['connections']} | {peak['p99_ms']:.1f} |" if peak else f"| {name} | none within 50 ms | | |")
    for name, found in results["targets"].items():
        if "soak" in found:
            s = found["soak"]
            print(f"\nsoak {name}: {s['sent']} requests in {s['seconds']} s ({s['achieved_rate']:.1f}/s of {s['target_rate']:.1f} asked)")
            print("| minute | requests | 201 | errors | p50 ms | p99 ms |\n|---|---|---|---|---|---|")
            for row in s["minutes"]:
                print(f"| {row['minute']} | {row['requests']} | {row['created']} | {row['errors']} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} |")
            print(f"worker RSS MB start {sorted(round(v, 1) for v in s['worker_rss_mb_start'].values())} "
                  f"end {sorted(round(v, 1) for v in s['worker_rss_mb_end'].values())}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
