"""Shared fixtures: a tiny model trained in seconds from data/examples.csv for the wiring,
and (in tests/model/) a model trained on the real public datasets for behaviour."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from moderation import bundle
from training.datasets import default_data_dir, is_available
from training.pipeline import run_training
from training.train import TrainingConfig

# Texts that have broken scorers before: empty, blank, obfuscated, shouting, non-Latin, HTML.
AWKWARD_TEXTS = [
    "Great reporting, thank you for covering the council meeting.",
    "you are a complete idiot and a liar",
    "Check out my channel!!! http://bit.ly/free-money subscribe",
    "f u c k you moron",
    "",
    "   ",
    "WOW WHAT A GOAL",
    "Привет, как дела?",
    "<br />&amp; <script>alert(1)</script>",
    "Cheap loans, call 0800 123 4567 today or text +44 7700 900123",
    "👍",  # normalises to nothing
    "u r a m0r0n l0s3r",  # spaced letters the normaliser joins
    "YOU ARE AN IDIOT OK",  # shouting: a marker no single word owns
]

PUBLIC_SETS = ("youtube_spam", "sms_spam", "impermium_insults", "davidson_hate_offensive", "olid_offenseval2019", "jigsaw_toxic_binary_sample")


def public_data_or_skip() -> Path:
    """Return the public data directory; skip (or fail in CI) when the sets are missing."""
    data_dir = default_data_dir()
    if all(is_available(name, data_dir) for name in PUBLIC_SETS):
        return data_dir
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI needs the public datasets in {data_dir}")
    pytest.skip(f"public datasets not found in {data_dir}")


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    """A bundle trained on our own examples only: seconds, for wiring tests."""
    out = tmp_path_factory.mktemp("tiny") / "model"
    run_training(default_data_dir(), out, names=["examples"], config=TrainingConfig(kind="logreg"))
    return out


@pytest.fixture(scope="session")
def tiny_model(tiny_bundle):
    return bundle.load(tiny_bundle)


def write_tiny_pieces(directory: Path, dims: int = 16) -> Path:
    """A piece-vector table shaped like the distilled one (BERT normaliser and pre-tokenizer,
    WordPiece), made in milliseconds from our examples' words: no torch, no download.

    Its vectors are seeded noise plus one direction shared by a few abusive and spammy
    pieces, so the piece block has something to learn and the wiring is tested for real.
    """
    import csv
    import json
    import re

    import numpy as np
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    with open(Path(__file__).parents[1] / "data" / "examples.csv", encoding="utf-8") as handle:
        found = {w for row in csv.DictReader(handle) for w in re.findall(r"[a-z']+", row["text"].lower())}
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocabulary = ["[PAD]", "[UNK]", *letters, *(f"##{c}" for c in letters), *sorted(found - set(letters))[:400], "!", "?", "'", ".", ","]
    tokenizer = Tokenizer(models.WordPiece({piece: i for i, piece in enumerate(vocabulary)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    rng = np.random.default_rng(20261127)
    table = rng.normal(size=(len(vocabulary), dims))
    for piece in ("idiot", "stupid", "moron", "free", "money", "click", "subscribe", "channel"):
        if piece in vocabulary:
            table[vocabulary.index(piece), 0] += 4.0
    directory.mkdir(parents=True, exist_ok=True)
    np.save(directory / "table.npy", table.astype(np.float16))
    (directory / "tokenizer.json").write_text(tokenizer.to_str(), encoding="utf-8")
    (directory / "source.json").write_text(json.dumps({"teacher": "seeded noise", "distiller": "tests/conftest.py", "unknown_id": 1, "shape": list(table.shape)}))
    return directory


@pytest.fixture(scope="session")
def tiny_pieces(tmp_path_factory) -> Path:
    return write_tiny_pieces(tmp_path_factory.mktemp("pieces"))


@pytest.fixture(scope="session")
def tiny_pieces_bundle(tmp_path_factory, tiny_pieces) -> Path:
    """The tiny bundle with a piece-vector block beside its n-grams."""
    out = tmp_path_factory.mktemp("tiny-pieces") / "model"
    run_training(default_data_dir(), out, names=["examples"], config=TrainingConfig(kind="logreg"), pieces_dir=tiny_pieces)
    return out


@pytest.fixture(scope="session", params=["ngrams", "pieces"])
def any_tiny_bundle(request) -> Path:
    """The tiny bundle, once with n-grams only and once with piece vectors too."""
    return request.getfixturevalue("tiny_bundle" if request.param == "ngrams" else "tiny_pieces_bundle")


@pytest.fixture(scope="session")
def any_tiny_model(any_tiny_bundle):
    return bundle.load(any_tiny_bundle)


@pytest.fixture
def tiny_bundle_copy(tiny_bundle, tmp_path) -> Path:
    """A private copy of the tiny bundle that a test may damage."""
    import shutil

    target = tmp_path / "model"
    shutil.copytree(tiny_bundle, target)
    return target


# --- the service on a real database: SQLite and PostgreSQL -----------------------------

import shutil  # noqa: E402
import uuid  # noqa: E402

from sqlalchemy import text  # noqa: E402
from sqlalchemy.exc import DBAPIError  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from moderation import create_app, store  # noqa: E402
from moderation.db import make_engine, upgrade  # noqa: E402

POSTGRES_URL = os.environ.get("MODERATION_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
TABLES = ("webhook_deliveries", "webhook_outbox", "webhook_endpoints", "audit_log", "ban_events", "comments", "api_keys", "desk_sessions", "users", "bans", "model_promotions", "model_versions")


def _postgres_reachable() -> bool:
    engine = make_engine(POSTGRES_URL)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A migrated SQLite database, copied for each test (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_schema():
    """A private, migrated schema in the test PostgreSQL database, dropped at the end.

    Without PostgreSQL the tests are skipped, except under CI=true, where they fail.
    """
    if not _postgres_reachable():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs PostgreSQL at {POSTGRES_URL}")
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}")
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    engine = make_engine(POSTGRES_URL, schema=schema)
    upgrade(engine)
    yield schema
    engine.dispose()
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path) -> dict:
    """Configuration for a clean, migrated database of each kind."""
    if request.param == "sqlite":
        path = tmp_path / "moderation.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield {"DATABASE_URL": f"sqlite:///{path}"}
        return
    schema = request.getfixturevalue("postgres_schema")
    settings = {"DATABASE_URL": POSTGRES_URL, "DATABASE_SCHEMA": schema}
    yield settings
    engine = make_engine(POSTGRES_URL, schema=schema)
    with engine.begin() as connection:  # the audit log refuses TRUNCATE too; as a replica, this session fires no triggers
        connection.execute(text("SET LOCAL session_replication_role = replica"))
        connection.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    engine.dispose()


def assert_error(response, status: int, code: str, fields: tuple[str, ...] = ()) -> dict:
    """Assert an answer in the one error shape, with this status and code, naming ``fields``; return its error."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    error = response.get_json()["error"]
    assert error["code"] == code and error["message"]
    assert set(fields) <= set(error.get("fields", {})), error
    return error


import base64  # noqa: E402


def assert_append_only(engine, table: str, changes: list[str]) -> None:
    """Each UPDATE or DELETE in ``changes`` (and, on PostgreSQL, TRUNCATE of ``table``) is refused as append-only."""
    statements = list(changes)
    if engine.dialect.name == "postgresql":  # TRUNCATE fires no row trigger: a statement trigger refuses it
        statements.append(f"TRUNCATE {table} CASCADE")
    for statement in statements:
        with pytest.raises(DBAPIError, match="append-only"):
            with engine.begin() as connection:
                connection.execute(text(statement))


def raw_cursor(text: str) -> str:
    """A cursor holding exactly ``text``, encoded as the service encodes its own."""
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


# Queue cursors nobody issued: each must be refused (API) or ignored with a notice (desk), never a 500.
CRAFTED_CURSORS = [
    ("age", store.encode_cursor(["9999-12-31T23:59:59-14:00", 1])),  # after year 9999 in UTC: OverflowError
    ("age", store.encode_cursor(["0001-01-01T00:00:00+14:00", 1])),  # before year 1 in UTC
    ("age", store.encode_cursor([0.5, 1])),
    ("age", store.encode_cursor(["yesterday", 1])),
    ("risk", raw_cursor("[" * 2000)),  # RecursionError in json.loads
    ("age", raw_cursor("[" * 2000)),
    ("risk", raw_cursor("[NaN, 1]")),  # matched nothing: an empty 200 page
    ("risk", raw_cursor("[Infinity, 1]")),
    ("risk", raw_cursor("[-Infinity, 1]")),
    ("risk", raw_cursor("[1e999, 1]")),
    ("risk", raw_cursor(f"[{10**400}, 1]")),  # no float can hold it
    ("risk", store.encode_cursor(["2020-01-01T00:00:00+00:00", 1])),
    ("risk", store.encode_cursor([True, 1])),
    ("risk", store.encode_cursor([0.5, -1])),
    ("risk", store.encode_cursor([0.5, 2**63])),
    ("risk", raw_cursor("[0.5, 1, 2]")),
    ("risk", raw_cursor('{"a": 1}')),
    ("risk", "%%%%"),
    ("risk", "gA"),  # not UTF-8 once decoded
]


DEEP = 100_000  # far past Python's recursion limit, well under the body size limit
# JSON bodies nested too deeply for the parser (RecursionError, not ValueError): each must be the usual 400.
NESTED_TOO_DEEPLY = {
    "closed lists": '{"text": ' + "[" * DEEP + "]" * DEEP + "}",
    "open lists": '{"text": ' + "[" * DEEP,  # and never closed
    "bare lists": "[" * DEEP,
    "objects": '{"a":' * (DEEP // 10) + "1" + "}" * (DEEP // 10),
}


# Thresholds that make the tiny model's decisions predictable: everything is held,
# unless a test chooses otherwise.
HOLD_EVERYTHING = {"spam": {"review_at": 0.0, "reject_at": 2.0}, "toxic": {"review_at": 2.0, "reject_at": 2.0}}


class Api:
    """A test client with a site key and a moderator key, and helpers for common calls."""

    def __init__(self, app, suffix: str = ""):
        self.app = app
        self.client = app.test_client()
        with Session(app.extensions["moderation.engine"]) as session:
            self.site_key = store.create_key(session, "site-test" + suffix, "site")
            self.moderator_key = store.create_key(session, "moderator-test" + suffix, "moderator")

    def headers(self, role: str = "site") -> dict:
        return {"Authorization": f"Bearer {self.site_key if role == 'site' else self.moderator_key}"}

    def post_comment(self, text: str = "A perfectly ordinary comment about the news.", **fields):
        body = {"text": text, "article": {"id": "a1", "section": "news"}, **fields}
        return self.client.post("/api/v1/comments", json=body, headers=self.headers("site"))

    def get(self, path: str, role: str = "moderator"):
        return self.client.get(path, headers=self.headers(role))

    def decide(self, comment_id: int, action: str = "approve", reason: str | None = None, **extra):
        body = {"action": action, **({"reason": reason} if reason else {}), **extra}
        return self.client.post(f"/api/v1/comments/{comment_id}/decision", json=body, headers=self.headers("moderator"))


@pytest.fixture
def make_api(database, tiny_bundle, tmp_path):
    """Build an `Api` on a fresh app; keyword arguments override configuration."""
    apps = []

    def build(**overrides) -> Api:
        config = {
            "TESTING": True, "INSTANCE_DIR": str(tmp_path), "MODEL_DIR": str(tiny_bundle),
            "RATE_LIMIT": "1000 per minute", "THRESHOLDS": HOLD_EVERYTHING, "LANGUAGES": ["en"], "DISCARD_SPAM_AT": 2.0,
            **database, **overrides,
        }
        app = create_app(config)
        apps.append(app)
        return Api(app, suffix=f"-{len(apps)}" if len(apps) > 1 else "")

    yield build
    for app in apps:
        app.extensions["moderation.engine"].dispose()


@pytest.fixture
def api(make_api) -> Api:
    return make_api()


# --- the review desk -----------------------------------------------------------------------

import re  # noqa: E402

from moderation import accounts  # noqa: E402


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch):
    """Argon2 at its lowest cost in tests: the same code path, without ~50 ms of hashing per sign-in."""
    from argon2 import PasswordHasher

    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Desk:
    """A browser-like client of the review desk: signs in, keeps the CSRF token, posts forms."""

    def __init__(self, api: Api):
        self.api = api
        self.app = api.app
        self.client = api.app.test_client()
        self.token = None

    def add_user(self, name: str, role: str = "moderator", password: str = PASSWORD) -> None:
        with Session(self.app.extensions["moderation.engine"]) as session:
            accounts.add_user(session, name, role, password)

    def csrf(self, page: str = "/moderate/login") -> str:
        found = _CSRF.search(self.client.get(page, follow_redirects=True).get_data(as_text=True))
        assert found, f"no CSRF token on {page}"
        self.token = found.group(1)
        return self.token

    def login(self, name: str, password: str = PASSWORD):
        response = self.client.post("/moderate/login", data={"name": name, "password": password, "csrf_token": self.csrf()})
        self.token = None  # signing in starts a new session, with a new CSRF token
        return response

    def post(self, path: str, data: dict | None = None, *, json: bool = False, **kwargs):
        headers = {"Accept": "application/json"} if json else {}
        body = {"csrf_token": self.token or self.csrf(), **(data or {})}
        return self.client.post(path, data=body, headers=headers, **kwargs)

    def decide(self, ids, verdict: str = "approve", *, json: bool = False, follow_redirects: bool = False, **fields):
        ids = [ids] if isinstance(ids, int) else list(ids)
        body = {"ids": [str(i) for i in ids], "verdict": verdict, **fields}
        return self.post("/moderate/decide", body, json=json, follow_redirects=follow_redirects)

    def page(self, path: str) -> str:
        response = self.client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        return response.get_data(as_text=True)


@pytest.fixture
def desk(api) -> Desk:
    """A desk client signed in as moderator 'mia', with an admin 'ada' and another moderator 'max' existing."""
    desk = Desk(api)
    desk.add_user("mia")
    desk.add_user("max")
    desk.add_user("ada", "admin")
    assert desk.login("mia").status_code == 302
    return desk


# Screenshots from the browser tests: kept after the run, listed in its summary.
SCREENSHOTS = Path(os.environ.get("MODERATION_TEST_SCREENSHOTS", Path(__file__).resolve().parents[1] / "test-artifacts" / "desk"))
SCREENSHOTS.mkdir(parents=True, exist_ok=True)
_SESSION_START = __import__("time").time()


def pytest_terminal_summary(terminalreporter):
    fresh = sorted(p.name for p in SCREENSHOTS.glob("*.png") if p.stat().st_mtime >= _SESSION_START)
    if fresh:
        terminalreporter.write_line(f"desk screenshots ({', '.join(fresh)}) saved in {SCREENSHOTS}")


# --- a real browser against the app served over HTTP ----------------------------------------

import contextlib  # noqa: E402
import threading  # noqa: E402

from werkzeug.serving import make_server  # noqa: E402

CHROMIUM = os.environ.get("MODERATION_TEST_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright (headless); skipped without it, except under CI=true."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs Chromium at {CHROMIUM} (Debian package 'chromium')")
        pytest.skip(f"no Chromium at {CHROMIUM}")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


def browser_app(tiny_bundle, sqlite_template, tmp_path, **overrides):
    """The moderation app on a fresh SQLite database, with desk users mia (moderator) and ada (admin)."""
    path = tmp_path / "moderation.db"
    shutil.copy(sqlite_template, path)
    app = create_app({
        "TESTING": True, "INSTANCE_DIR": str(tmp_path), "MODEL_DIR": str(tiny_bundle), "DATABASE_URL": f"sqlite:///{path}",
        "RATE_LIMIT": "1000 per minute", **overrides,
    })
    with Session(app.extensions["moderation.engine"]) as session:
        accounts.add_user(session, "mia", "moderator", PASSWORD)
        accounts.add_user(session, "ada", "admin", PASSWORD)
    return app


@contextlib.contextmanager
def serving(app):
    """Serve ``app`` on a free loopback port in a thread; yield its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        engine = app.extensions.get("moderation.engine")
        if engine is not None:
            engine.dispose()


def sign_in(page, base_url: str, name: str = "mia") -> None:
    """Sign in to the review desk through its form, with the keyboard only."""
    page.goto(base_url + "/moderate/queue")
    # The form's autofocus lands after the page has loaded; keys typed before it go nowhere.
    page.wait_for_function("document.activeElement && document.activeElement.name === 'name'")
    page.keyboard.type(name)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/moderate/queue")
