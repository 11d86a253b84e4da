"""Flood control: at most RATE_LIMIT comments per author email and per IP address.

The counters live in RATELIMIT_STORAGE_URI: memory for one process, Redis when several
hosts must share them (RATELIMIT_KEY_PREFIX keeps installations sharing one Redis apart).
The strategy is a sliding-window counter (a fixed window would let 2N through across its
edge): the previous window's count, weighted by how much of it still overlaps the last
RATE_LIMIT period, plus the current window's count.

Intake asks once per comment (`IntakeLimiter.admit`): both of the comment's counters (its
author's and its address's) are checked and, only if neither is exhausted, both are
counted, in one step: with Redis one script call, a single round trip. A refused comment
counts against nothing. Retries of a stored comment are answered before the limiter is
asked (`intake.submit`), so they are never refused and never counted.

If Redis goes away, intake continues with each worker's in-memory counters (logged on
stderr: "Rate limit storage unreachable", and "recovered" when it is back, retried after
1, 2, 4 ... 32 s) rather than failing; a Redis that stops answering costs at most
REDIS_TIMEOUT_SECONDS per request, not a hang. Each app has its own limiter and counters,
so two apps in one process behave like two hosts.

The desk's sign-in limit (LOGIN_RATE_LIMIT) goes through Flask-Limiter, on the desk's
routes only, with the same storage.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import math
import sys
import threading
import time
from dataclasses import dataclass

from flask import Flask
from flask_limiter import Limiter
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, RedisSentinelStorage, RedisStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from moderation.errors import ApiError

LIMITED_ENDPOINT = "api.create_comment"
REDIS_TIMEOUT_SECONDS = 1.0
MAX_RECOVERY_WAIT_EXPONENT = 5  # after a failure, Redis is tried again after 1, 2, 4 ... 32 s
log = logging.getLogger("flask-limiter")  # the same logger (and lines) as the desk's limiter


def _log_limiter_warnings() -> None:
    """Flask-Limiter logs to "flask-limiter" behind a NullHandler, which also keeps Python's
    last-resort handler silent: its lines reach stderr through the root logger's handler
    when one is installed, else through one of our own."""
    logger = logging.getLogger("flask-limiter")
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    if not logging.getLogger().handlers and not any(getattr(handler, "_moderation", False) for handler in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setLevel(logging.INFO)  # "storage unreachable" (warning) and "storage recovered" (info)
        handler.setFormatter(logging.Formatter("%(asctime)s [%(process)d] %(levelname)s flask-limiter: %(message)s"))
        handler._moderation = True
        logger.addHandler(handler)


def normalized_email(value: str | None) -> str | None:
    """The author key: one counter however the address is capitalised or padded."""
    return value.strip().lower() if isinstance(value, str) and value.strip() else None


def normalized_ip(value: str | None) -> str | None:
    """2001:DB8::1 and 2001:db8:0::1 are one address (validation has normalised it already)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


# --- the counters ---------------------------------------------------------------------------


@dataclass
class Window:
    """One counter's state just after the check: counts and time left (seconds) of both windows."""

    previous_count: int
    previous_ttl: float
    current_count: int
    current_ttl: float

    def weighted(self, expiry: float) -> float:
        return self.previous_count * self.previous_ttl / expiry + self.current_count

    def stats(self, item: RateLimitItem, now: float) -> tuple[float, int]:
        """(reset time, remaining), as limits' SlidingWindowCounterRateLimiter.get_window_stats computes them."""
        expiry = item.get_expiry()
        remaining = max(0, item.amount - math.floor(self.weighted(expiry)))
        if not (self.previous_count or self.current_count):
            return now, remaining
        previous_reset_in = self.previous_ttl % (expiry / self.previous_count) if self.previous_count else math.inf
        current_reset_in = self.current_ttl % expiry if self.current_count else math.inf
        return now + min(previous_reset_in, current_reset_in), remaining


# Every counter of one comment checked and, only if none is exhausted, all counted, atomically.
# KEYS: previous and current window key of each counter, in pairs; ARGV: limit and expiry
# (seconds) of each counter, in pairs. The per-counter logic is limits' acquire_sliding_window.lua
# (same keys, same data), so hosts running Flask-Limiter's check share these counters.
# Returns {admitted (1/0), then per counter: previous count, previous ttl ms, current count, current ttl ms}.
_ACQUIRE_ALL = """
local counters = #KEYS / 2
local admitted = 1
local state = {}
for i = 1, counters do
    local previous_key, current_key = KEYS[2 * i - 1], KEYS[2 * i]
    local limit, expiry = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i]) * 1000
    local current_ttl = tonumber(redis.call('pttl', current_key))
    if current_ttl > 0 and current_ttl < expiry then
        redis.call('rename', current_key, previous_key)
        redis.call('set', current_key, 0, 'PX', current_ttl + expiry)
    end
    local previous_count = tonumber(redis.call('get', previous_key)) or 0
    local previous_ttl = math.max(tonumber(redis.call('pttl', previous_key)) or 0, 0)
    local current_count = tonumber(redis.call('get', current_key)) or 0
    current_ttl = math.max(tonumber(redis.call('pttl', current_key)) or 0, 0)
    if math.floor(previous_count * previous_ttl / expiry) + current_count + 1 > limit then
        admitted = 0
    end
    state[i] = {previous_count, previous_ttl, current_count, current_ttl}
end
if admitted == 1 then
    for i = 1, counters do
        local current_key, expiry = KEYS[2 * i], tonumber(ARGV[2 * i]) * 1000
        if redis.call('exists', current_key) == 1 then
            state[i][3] = redis.call('incrby', current_key, 1)
        else
            redis.call('set', current_key, 1, 'PX', expiry * 2)
            state[i][3], state[i][4] = 1, expiry * 2
        end
    end
end
local out = {admitted}
for i = 1, counters do
    for j = 1, 4 do
        out[#out + 1] = state[i][j]
    end
end
return out
"""


class MemoryCounters:
    """The same sliding-window counters in this process: a dict and a lock, expired entries swept once per minute."""

    SWEEP_SECONDS = 60.0

    def __init__(self):
        self._lock = threading.Lock()
        self._entries: dict[str, list[float]] = {}  # key -> [previous count, previous expires at, current count, current expires at]
        self._next_sweep = time.monotonic() + self.SWEEP_SECONDS

    def _window(self, key: str, expiry: float, now: float) -> tuple[list[float], Window]:
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = [0, 0.0, 0, 0.0]
        if entry[3] <= now:
            entry[2], entry[3] = 0, 0.0
        if entry[1] <= now:
            entry[0], entry[1] = 0, 0.0
        current_ttl = entry[3] - now
        if 0 < current_ttl < expiry:  # the current window ended: it becomes the previous one
            entry[0], entry[1] = entry[2], entry[3]
            entry[2], entry[3] = 0, now + current_ttl + expiry
        return entry, Window(int(entry[0]), max(entry[1] - now, 0.0), int(entry[2]), max(entry[3] - now, 0.0))

    def acquire_all(self, counters: list[tuple[str, RateLimitItem]]) -> tuple[bool, list[Window]]:
        with self._lock:
            now = time.monotonic()
            if now >= self._next_sweep:
                self._sweep(now)
            state = [self._window(key, item.get_expiry(), now) for key, item in counters]
            admitted = all(math.floor(w.previous_count * w.previous_ttl / item.get_expiry()) + w.current_count + 1 <= item.amount
                           for (_, item), (_, w) in zip(counters, state))
            if admitted:
                for (_, item), (entry, window) in zip(counters, state):
                    if entry[3] > now:
                        entry[2] += 1
                    else:
                        entry[2], entry[3] = 1, now + 2 * item.get_expiry()
                    window.current_count, window.current_ttl = int(entry[2]), entry[3] - now
            return admitted, [window for _, window in state]

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + self.SWEEP_SECONDS
        for key in [key for key, entry in self._entries.items() if entry[1] <= now and entry[3] <= now]:
            del self._entries[key]


class RedisCounters:
    """The counters in Redis: one script call per comment."""

    def __init__(self, storage: RedisStorage):
        self.storage = storage
        self._script = storage.get_connection().register_script(_ACQUIRE_ALL)

    def acquire_all(self, counters: list[tuple[str, RateLimitItem]]) -> tuple[bool, list[Window]]:
        keys, args = [], []
        for key, item in counters:
            current = self.storage.prefixed_key(self.storage._current_window_key(key))
            keys += [self.storage.prefixed_key(self.storage._previous_window_key(key)), current]
            args += [item.amount, item.get_expiry()]
        answer = self._script(keys, args)
        windows = [Window(int(answer[i] or 0), max(0, float(answer[i + 1] or 0)) / 1000, int(answer[i + 2] or 0), max(0, float(answer[i + 3] or 0)) / 1000)
                   for i in range(1, len(answer), 4)]
        return bool(answer[0]), windows


class StorageCounters:
    """Any other storage limits supports (memcached, MongoDB, a Redis cluster...): one counter after
    the other through limits' own sliding-window strategy, as Flask-Limiter would."""

    def __init__(self, storage):
        self.storage = storage
        self.strategy = SlidingWindowCounterRateLimiter(storage)

    def acquire_all(self, counters: list[tuple[str, RateLimitItem]]) -> tuple[bool, list[Window]]:
        admitted = all(self.strategy.hit(item, key) for key, item in counters)
        windows = []
        for key, item in counters:
            previous_count, previous_ttl, current_count, current_ttl = self.storage.get_sliding_window(item.key_for(key), item.get_expiry())
            windows.append(Window(previous_count, previous_ttl, current_count, current_ttl))
        return admitted, windows

    def check(self) -> bool:
        return self.storage.check()


# --- the intake limiter ---------------------------------------------------------------------


class IntakeLimiter:
    """RATE_LIMIT per author email and per IP address for new comments."""

    def __init__(self, app: Flask, storage=None):
        """``storage``: the limits storage of RATELIMIT_STORAGE_URI (None or memory: this process's counters)."""
        self.app = app
        self.prefix = app.config.get("RATELIMIT_KEY_PREFIX") or ""
        self.memory = MemoryCounters()
        self.storage = None if storage is None or isinstance(storage, MemoryStorage) else storage
        self.shared = None
        if self.storage is not None:
            self.shared = RedisCounters(self.storage) if type(self.storage) in (RedisStorage, RedisSentinelStorage) else StorageCounters(self.storage)
        self._storage_dead = False
        self._failures_in_a_row = 0
        self._next_check = 0.0
        self._parsed: tuple[str, list[RateLimitItem]] | None = None

    def items(self) -> list[RateLimitItem]:
        """RATE_LIMIT parsed (again only when the setting changed)."""
        setting = self.app.config["RATE_LIMIT"]
        if self._parsed is None or self._parsed[0] != setting:
            self._parsed = (setting, list(parse_many(setting)))
        return self._parsed[1]

    def counters(self, email: str | None, ip: str | None) -> list[tuple[str, RateLimitItem]]:
        """The storage keys of the comment's counters, as Flask-Limiter named them (so both can share them)."""
        found = []
        for name, value in (("author", normalized_email(email)), ("ip", normalized_ip(ip))):
            if value is None:
                continue
            identifiers = [self.prefix] if self.prefix else []
            identifiers += [f"{name}:{value}", f"{LIMITED_ENDPOINT}:{name}"]
            found += [(item.key_for(*identifiers), item) for item in self.items()]
        return found

    def _acquire(self, counters):
        if self.shared is None:
            return self.memory.acquire_all(counters)
        if self._storage_dead and (time.monotonic() < self._next_check or not self._recovered()):
            return self.memory.acquire_all(counters)
        try:
            return self.shared.acquire_all(counters)
        except Exception as error:  # a Redis outage must not stop intake
            log.warning("Rate limit storage unreachable - falling back to in-memory storage (%s: %s)", type(error).__name__, error)
            self._storage_dead = True
            self._failures_in_a_row = 0
            self._next_check = time.monotonic() + 1
            return self.memory.acquire_all(counters)

    def _recovered(self) -> bool:
        try:
            alive = bool(self.storage.check())
        except Exception:
            alive = False
        if alive:
            log.info("Rate limit storage recovered")
            self._storage_dead = False
            return True
        self._failures_in_a_row = (self._failures_in_a_row + 1) % (MAX_RECOVERY_WAIT_EXPONENT + 1)
        self._next_check = time.monotonic() + 2 ** self._failures_in_a_row
        return False

    def admit(self, email: str | None, ip: str | None) -> dict[str, str]:
        """Count one comment against its author's and its address's limits and return the
        X-RateLimit headers; raise a 429 `ApiError` (counting nothing) when either is exhausted."""
        counters = self.counters(email, ip)
        if not counters:
            return {}
        admitted, windows = self._acquire(counters)
        now = time.time()
        stats = [(item, *window.stats(item, now)) for (_, item), window in zip(counters, windows)]
        if admitted:
            item, reset, remaining = min(stats, key=lambda s: s[2])  # the tightest limit
        else:  # the exhausted limit that frees up last: retrying before then is refused again
            item, reset, remaining = max([s for s in stats if s[2] <= 0] or stats, key=lambda s: s[1])
        reset_at = int(reset + 1)
        headers = {"X-RateLimit-Limit": str(item.amount), "X-RateLimit-Remaining": str(remaining), "X-RateLimit-Reset": str(reset_at)}
        if admitted:
            return headers
        headers["Retry-After"] = str(max(1, int(reset_at - now)))
        raise ApiError(429, f"too many comments from this author or address (limit: {item}); retry after Retry-After seconds", headers=headers)


def init_app(app: Flask) -> None:
    """Attach the intake limiter, and Flask-Limiter for the desk's sign-in limit (call after blueprints)."""
    uri = app.config["RATELIMIT_STORAGE_URI"]
    options = {"socket_connect_timeout": REDIS_TIMEOUT_SECONDS, "socket_timeout": REDIS_TIMEOUT_SECONDS} if uri.startswith(("redis://", "rediss://")) else {}
    _log_limiter_warnings()
    limiter = Limiter(
        key_func=lambda: "unused", app=app, storage_uri=uri, storage_options=options,
        strategy="sliding-window-counter",  # a fixed window would let 2N through across its edge
        headers_enabled=True, swallow_errors=True, in_memory_fallback_enabled=True,
        key_prefix=app.config.get("RATELIMIT_KEY_PREFIX") or "",
    )
    app.extensions["moderation.limiter"] = limiter
    app.extensions["moderation.intake_limiter"] = IntakeLimiter(app, limiter.storage)
    _only_for_blueprint(app, limiter, DESK_BLUEPRINT)


DESK_BLUEPRINT = "desk"


def _only_for_blueprint(app: Flask, limiter: Limiter, blueprint: str) -> None:
    """Run Flask-Limiter's request hooks for ``blueprint``'s routes only.

    Flask-Limiter hooks every request of the app: a check for default limits (there are
    none) and the header injection, some 0.1-0.2 ms per API request. Its decorated limits
    (the sign-in's) check themselves; only the headers and the cleanup need hooks.
    """

    def ours(hook) -> bool:
        bound = getattr(hook, "__self__", None) is limiter
        return bound or (isinstance(hook, functools.partial) and limiter in hook.args)

    def _retry_after_only_when_refused(response):
        # Flask-Limiter sends Retry-After on every limited response; a client honouring
        # it on a 200 would wait for nothing.
        if response.status_code not in (429, 503):
            response.headers.pop("Retry-After", None)
        return response

    for hooks in (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs):
        moved = [hook for hook in hooks.get(None, []) if ours(hook)]
        hooks[None] = [hook for hook in hooks.get(None, []) if not ours(hook)]
        if hooks is app.after_request_funcs:
            moved.insert(0, _retry_after_only_when_refused)  # registered first, so it runs after the headers are set
        hooks.setdefault(blueprint, []).extend(moved)
