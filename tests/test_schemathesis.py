"""schemathesis against the served OpenAPI document: generated requests (valid and invalid) for every
operation, with the key its x-roles name; no 500s, and every answer's status, content type and body
match the document. Bounded: a few examples per operation and a deadline, on one SQLite app."""

from __future__ import annotations

import hashlib
import hmac

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance, status_code_conformance
from sqlalchemy.orm import Session

from moderation import create_app, store
from moderation.db import make_engine, upgrade

EXAMPLES = 8  # per operation and mode: about 30 operations x 2 modes stay well under a minute
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def st_app(tiny_bundle, tmp_path_factory):
    directory = tmp_path_factory.mktemp("schemathesis")
    url = f"sqlite:///{directory}/t.db"
    engine = make_engine(url)
    upgrade(engine)
    app = create_app({"DATABASE_URL": url, "MODEL_DIR": str(tiny_bundle), "TESTING": True, "RATE_LIMIT": "100000 per minute",
                      "INSTANCE_DIR": str(directory), "LOG_FORMAT": "off"})
    with Session(engine) as session:
        app.config["st_keys"] = {role: store.create_key(session, f"st-{role}", role) for role in ("site", "moderator", "admin")}
        for number in range(3):  # something to find, decide and page through
            client = app.test_client()
            client.post("/api/v1/comments", json={"text": f"Seed comment {number} about the budget."},
                        headers={"Authorization": f"Bearer {app.config['st_keys']['site']}"})
    engine.dispose()
    yield app
    app.extensions["moderation.engine"].dispose()


@pytest.fixture(scope="module")
def st_schema(st_app):
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", st_app)


def operations(st_schema):
    return [result.ok() for result in st_schema.get_all_operations()]


# schemathesis's own pytest plugin (schema.parametrize) does not run under pytest 9, so each
# operation's strategy is driven by Hypothesis here; a failure names the operation.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_every_operation_answers_as_documented(st_app, st_schema, mode):
    keys = st_app.config["st_keys"]
    tried = 0
    for operation in operations(st_schema):
        if mode is GenerationMode.NEGATIVE and operation.path.startswith("/1.1/"):
            continue  # invalid form bodies take schemathesis ~4 s each to make; test_hostile.py fuzzes Akismet's forms
        roles = operation.definition.raw.get("x-roles") or []
        headers = {"Authorization": f"Bearer {keys[roles[0]]}"} if roles else {}

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=2000, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
        def check(case):
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            check()
            tried += 1
        except Unsatisfiable:  # nothing in the operation can be made invalid (GET /healthz takes no input)
            assert mode is GenerationMode.NEGATIVE, operation.label
        except Exception as error:
            raise AssertionError(f"{operation.label} ({mode.value}): {error}") from error
    assert tried >= 10


def test_the_run_covers_every_documented_operation(st_schema):
    """Not vacuous: every operation of the document is collected, and the keyed ones name known roles."""
    found = operations(st_schema)
    assert len(found) >= 15
    for operation in found:
        for role in operation.definition.raw.get("x-roles") or []:
            assert role in ("site", "moderator", "admin"), operation.label
