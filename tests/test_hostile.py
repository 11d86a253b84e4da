"""Hostile input: the normaliser, scoring and every parser of outside input never crash, hang or
blow up quadratically, whatever they are sent (Hypothesis properties, plus fixed pathological cases).

Bounded for CI: a few dozen examples per property, one SQLite app per test.
"""

from __future__ import annotations

import csv
import gc
import hashlib
import hmac
import io
import json
import time
from xml.etree.ElementTree import ParseError

import pytest
from defusedxml import DefusedXmlException
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from moderation import imports
from moderation.assessor import Assessor
from moderation.imports import csvfile, wordpress
from moderation.text import normalize, word_spans

FAST = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)

# Characters spammers and broken clients send: RTL marks and overrides, zero-width joiners, BOMs,
# combining marks, fullwidth and Cyrillic look-alikes, emoji, leet symbols, HTML and URL pieces.
JUNK = st.sampled_from(list("\u200e\u200f\u202a\u202b\u202e\u2066\u2069\u200b\u200c\u200d\u2060\ufeff\u0301\u0308\u0336\u20dd"
                            "\uff41\uff21\u0430\u043e\u0435\U0001f600\U0001f1fa\U0001f1f8@$!|01345 .-_*\n\t<>&;/:#?=%")
                       + ["http://", "http://[", "[::1", "www.", ".com", "&amp;", "&#x202e;", "<b>", "</a>", "@x.org", "bit.ly/"])
TEXT = st.one_of(st.text(max_size=300), st.lists(st.one_of(JUNK, st.text(max_size=5)), max_size=120).map("".join))


# --- the normaliser ----------------------------------------------------------------------------


@FAST
@given(TEXT)
def test_normalize_and_word_spans_take_any_text(text):
    folded = normalize(text)
    assert isinstance(folded, str) and folded == folded.strip() and folded.isascii()
    spans = word_spans(text)
    assert all(text[s.start:s.end] == s.text and s.text for s in spans)
    assert [s.start for s in spans] == sorted(s.start for s in spans)


def _longest(text: str) -> float:
    started = time.perf_counter()
    normalize(text)
    word_spans(text)
    return time.perf_counter() - started


PATHOLOGICAL = {
    "1 MB of one letter": "a" * 1_000_000,
    "1 MB of one space-separated letter": "a " * 500_000,
    "1 MB of dots": "." * 1_000_000,
    "1 MB of at signs": "@" * 1_000_000,
    "1 MB of digits": "1" * 1_000_000,
    "1 MB of zero-width spaces": "\u200b" * 1_000_000,
    "100k combining marks on one letter": "e" + "\u0301" * 100_000,
    "100k mixed combining marks": "a" + "\u0301\u0308\u0336\u20dd" * 25_000,
    "RTL override soup": "\u202e\u200fabc\u2066\u200d" * 100_000,
    "a 200 kB URL": "http://example.com/" + "a/" * 100_000,
    "a long bare domain chain": "a." * 300_000 + "com",
    "emails end to end": "x@y.com" * 100_000,
    "leet run": "a1" * 300_000,
    "html entities": "&amp;" * 200_000,
    "tags": "<b>" * 300_000,
    "anchors that never close": ("<a " + "href=" * 59 + "x" * 2300) * 400,
    "dotted names before slashes": "abc." * 250_000 + "de/x",
}


@pytest.mark.parametrize("name", list(PATHOLOGICAL))
def test_pathological_text_is_handled_in_bounded_time(name):
    assert _longest(PATHOLOGICAL[name]) < 10.0, name  # linear steps do a megabyte in well under a second here


def _ratio(function, make, n: int, repeats: int = 3) -> float:
    """time(2n) / time(n), each the best of ``repeats`` interleaved runs (the minimum is the least noisy
    estimate on a shared machine); measured up to three times while it looks bad, and the better one kept."""
    small, large = make(n), make(2 * n)

    def once(text) -> float:
        gc.collect()
        gc.disable()  # the collector's passes over the whole test process's heap are not the text's cost
        try:
            started = time.perf_counter()
            function(text)
            return time.perf_counter() - started
        finally:
            gc.enable()

    once(make(n // 4))  # warm caches (the invisible-character table, the homoglyph table)
    ratios = []
    for _attempt in range(3):
        times_small, times_large = [], []
        for _ in range(repeats):
            times_small.append(once(small))
            times_large.append(once(large))
        ratios.append(min(times_large) / max(min(times_small), 1e-4))
        if ratios[-1] < 3.0:
            break
    return min(ratios)


GROWTH = {
    "letters": lambda n: "a" * n,
    "words": lambda n: ("word " * n)[:n],
    "spaced letters": lambda n: ("f u c k " * n)[:n],
    "combining": lambda n: "e" + "\u0301" * n,
    "urls": lambda n: ("http://bit.ly/x www.a.com " * n)[:n],
    "junk": lambda n: ("\u202eab\u200b1@x.org <i>&amp; \uff41\u0430 " * n)[:n],
}


@pytest.mark.parametrize("shape", list(GROWTH))
def test_normalize_grows_linearly(shape):
    ratio = _ratio(lambda t: (normalize(t), word_spans(t)), GROWTH[shape], 50_000)
    assert ratio < 3.0, f"{shape}: doubling the text took {ratio:.1f} times as long"


@pytest.mark.parametrize("shape", ["words", "spaced letters", "junk"])
def test_the_whole_assessment_grows_linearly(tiny_model, shape):
    assessor = Assessor(tiny_model, decision_labels=["spam", "toxic"])
    ratio = _ratio(assessor.assess, GROWTH[shape], 20_000)
    assert ratio < 3.0, f"{shape}: doubling the text took {ratio:.1f} times as long to assess"


# --- the JSON API --------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50) | JUNK,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
FIELDS = ["text", "external_id", "parent_id", "author", "author.name", "author.email", "author.url", "author.ip",
          "author.user_agent", "article", "article.id", "article.url", "article.title", "article.section"]


def assert_error_shape(response):
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    if response.status_code >= 400:
        body = response.get_json()
        assert set(body) == {"error"} and isinstance(body["error"]["code"], str) and body["error"]["message"]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_the_comment_api_takes_any_json_value_in_any_field(api):
    @FAST
    @given(field=st.sampled_from(FIELDS), value=JSON_VALUES)
    @example(field="author.url", value="http://[")  # urlsplit raised ValueError: a 500 before the fix
    def check(field, value):
        body = {"text": "An ordinary comment.", "author": {"email": "reader@example.org"}, "article": {"id": "a1"}}
        if "." in field:
            outer, inner = field.split(".")
            body[outer] = {**body.get(outer, {}), inner: value}
        else:
            body[field] = value
        assert_error_shape(api.client.post("/api/v1/comments", json=body, headers=api.headers("site")))

    check()


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_the_decision_and_queue_apis_take_any_json_or_query(api):
    comment_id = api.post_comment().get_json()["id"]

    @FAST
    @given(body=JSON_VALUES, query=st.dictionaries(st.sampled_from(["limit", "cursor", "label", "ip", "sort", "older_than", "status"]),
                                                   st.text(max_size=30), max_size=3))
    def check(body, query):
        assert_error_shape(api.client.post(f"/api/v1/comments/{comment_id}/decision", json=body, headers=api.headers("moderator")))
        assert_error_shape(api.client.post("/api/v1/decisions", json={"decisions": [body]}, headers=api.headers("moderator")))
        assert_error_shape(api.client.get("/api/v1/queue", query_string=query, headers=api.headers("moderator")))

    check()


# --- Akismet's form posts -----------------------------------------------------------------------

AKISMET_FIELDS = ["api_key", "key", "blog", "user_ip", "user_agent", "referrer", "permalink", "comment_type", "comment_author",
                  "comment_author_email", "comment_author_url", "comment_content", "is_test", "blog_lang"]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_akismet_form_posts_with_random_missing_or_huge_fields(api):
    @FAST
    @given(endpoint=st.sampled_from(["verify-key", "comment-check", "submit-spam", "submit-ham"]),
           form=st.dictionaries(st.sampled_from(AKISMET_FIELDS), st.one_of(TEXT, st.sampled_from(["", "1", "::1", "999.1.1.1", "http://[", "x" * 20_000])),
                                max_size=len(AKISMET_FIELDS)),
           keyed=st.booleans())
    @example(endpoint="comment-check", form={"blog": "b", "user_ip": "::1", "comment_content": "hi", "comment_author_url": "http://["}, keyed=True)
    def check(endpoint, form, keyed):
        if keyed:
            form = {**form, "api_key": api.site_key}
        response = api.client.post(f"/1.1/{endpoint}", data=form)
        assert response.status_code < 500, (endpoint, form, response.get_data(as_text=True)[:300])
        assert response.mimetype == "text/plain"

    check()
    huge = api.client.post("/1.1/comment-check", data={"api_key": api.site_key, "comment_content": "y" * 400_000})
    assert huge.status_code == 413


# --- Coral's payloads ---------------------------------------------------------------------------

SECRET = "ssc_hostile_test"


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_coral_payloads_of_any_shape_with_a_valid_signature(make_api):
    api = make_api(CORAL_SIGNING_SECRETS={"coral": SECRET})
    shaped = st.fixed_dictionaries({}, optional={
        "action": st.one_of(st.sampled_from(["NEW", "EDIT"]), JSON_VALUES),
        "comment": st.one_of(st.fixed_dictionaries({}, optional={"body": st.one_of(TEXT, JSON_VALUES), "parentID": JSON_VALUES}), JSON_VALUES),
        "author": st.one_of(st.fixed_dictionaries({}, optional={"id": st.one_of(TEXT, JSON_VALUES), "role": JSON_VALUES}), JSON_VALUES),
        "story": st.one_of(st.fixed_dictionaries({}, optional={"id": JSON_VALUES, "url": st.one_of(TEXT, JSON_VALUES)}), JSON_VALUES),
    })

    @FAST
    @given(payload=st.one_of(shaped, JSON_VALUES), raw_junk=st.binary(max_size=50), use_junk=st.booleans())
    def check(payload, raw_junk, use_junk):
        raw = raw_junk if use_junk else json.dumps(payload).encode()
        signature = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
        response = api.client.post("/api/coral/moderate", data=raw, headers={"X-Coral-Signature": signature, "Content-Type": "application/json"})
        assert_error_shape(response)
        assert response.status_code in (200, 204) or response.status_code in (400, 413, 422), response.status_code

    check()


# --- imports ------------------------------------------------------------------------------------

CSV_COLUMNS = ["text", "status", "spam", "toxic", "external_id", "created_at", "decided_at", "author_email", "author_ip",
               "author_url", "article_id", "article_title"]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_hostile_csv_rows_are_skipped_with_a_reason_never_crash(api):
    session = Session(api.app.extensions["moderation.engine"])

    @FAST
    @given(columns=st.lists(st.sampled_from(CSV_COLUMNS), min_size=1, max_size=6, unique=True),
           rows=st.lists(st.lists(st.one_of(TEXT, st.sampled_from(["1", "0", "spam", "approved", "2024-13-45", "9999-12-31T23:59:59+14:00", "http://["])),
                                  max_size=8), max_size=8),
           raw_tail=st.sampled_from(["", '"unterminated', "\x00", "a,b,\"c\"d\n"]))
    @example(columns=["text", "status", "author_url"], rows=[["hi", "approved", "http://["]], raw_tail="")
    def check(columns, rows, raw_tail):
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows(rows)
        handle = io.StringIO(out.getvalue() + raw_tail, newline="")
        report = imports.Report()
        try:
            imports.run(csvfile.read(handle), session, site="s", source="csv", max_text_chars=10_000, dry_run=True, report=report)
        except csvfile.CsvError as error:
            assert str(error)  # the one clear, whole-file error: a bad header, or a line CSV cannot read
        session.rollback()
        assert sum(report.imported.values()) + sum(report.skipped.values()) <= len(rows) + 1  # raw_tail may add a row
        assert all(reason for reason in report.skipped)

    try:
        check()
    finally:
        session.close()


WXR = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:wp="http://wordpress.org/export/1.2/"><channel><item><title>{title}</title><wp:post_id>7</wp:post_id>
<wp:comment><wp:comment_id>{cid}</wp:comment_id><wp:comment_author_email>{email}</wp:comment_author_email>
<wp:comment_date_gmt>{date}</wp:comment_date_gmt><wp:comment_content>{content}</wp:comment_content>
<wp:comment_approved>{state}</wp:comment_approved><wp:comment_parent>{parent}</wp:comment_parent></wp:comment></item></channel></rss>"""


def _xml_text(value: str) -> str:
    return "".join(c for c in value if c in "\t\n\r" or " " <= c <= "\ud7ff" or "\ue000" <= c <= "\ufffd").replace("&", "&amp;").replace("<", "&lt;")


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_hostile_wordpress_exports_are_read_or_refused_clearly(api):
    session = Session(api.app.extensions["moderation.engine"])

    @FAST
    @given(fields=st.fixed_dictionaries({name: TEXT for name in ("title", "cid", "email", "date", "content", "state", "parent")}),
           escape=st.booleans(), cut=st.integers(min_value=0, max_value=800))
    def check(fields, escape, cut):
        document = WXR.format(**{k: _xml_text(v) if escape else v for k, v in fields.items()})
        if not escape:
            document = document[:len(document) - cut]  # raw values and truncation: mostly not XML at all
        report = imports.Report()
        try:
            imports.run(wordpress.read(io.BytesIO(document.encode("utf-8", "surrogatepass"))), session, site="s", source="wordpress",
                        max_text_chars=10_000, dry_run=True, report=report)
        except (ParseError, DefusedXmlException) as error:
            assert str(error) and not escape
        session.rollback()

    try:
        check()
    finally:
        session.close()


BOMBS = {
    "billion laughs": '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
                      '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><rss><channel><item><title>&c;</title></item></channel></rss>',
    "external entity": '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><rss><channel><item>'
                       '<title>&x;</title></item></channel></rss>',
}


@pytest.mark.parametrize("name", list(BOMBS))
def test_entity_bombs_and_external_entities_are_refused(name):
    with pytest.raises((DefusedXmlException, ParseError)):
        list(wordpress.read(io.BytesIO(BOMBS[name].encode())))


# --- what the desk shows of it ------------------------------------------------------------------


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_unreadable_urls_never_break_the_desk(desk):
    """An article URL urlsplit cannot read ("http://[") is stored as sent; the queue page and a
    sign-in's ``next`` must still work (both answered 500 before the fix)."""
    created = desk.api.post_comment("A comment on a page with a broken link.", article={"id": "a1", "url": "http://["})
    assert created.status_code == 201
    page = desk.client.get("/moderate/queue")
    assert page.status_code == 200 and "broken" in page.get_data(as_text=True)
    assert 'href="http://["' not in page.get_data(as_text=True)
    signed_out = type(desk)(desk.api)
    response = signed_out.client.post("/moderate/login?next=http://[", data={"name": "mia", "password": "correct horse battery staple",
                                                                          "csrf_token": signed_out.csrf(), "next": "http://["})
    assert response.status_code in (302, 303) and "[" not in response.headers["Location"]
    decided = desk.decide(created.get_json()["id"], "approve", next="http://[")
    assert decided.status_code in (302, 303), decided.status_code


# --- atheris: coverage-guided fuzzing of the normaliser and the comment validation --------------

FUZZ_TARGET = '''
import json, sys
import atheris
from moderation.text import normalize, word_spans
from moderation.errors import ApiError
normalize("\u00e9 warm")  # build the Unicode tables before instrumenting: instrumented, the 1.1M-code-point scan takes half a minute
with atheris.instrument_imports(include=["moderation"]):
    from moderation import validation
atheris.instrument_func(normalize)
atheris.instrument_func(word_spans)

def target(data):
    provider = atheris.FuzzedDataProvider(data)
    text = provider.ConsumeUnicodeNoSurrogates(2048)
    normalize(text)
    word_spans(text)
    try:
        body = json.loads(provider.ConsumeUnicodeNoSurrogates(2048))
    except ValueError:
        return
    if isinstance(body, dict):
        try:
            validation.new_comment(body, 10_000)
        except ApiError:
            pass

atheris.Setup([sys.argv[0], "-runs=20000", "-max_len=4096", "-seed=1"], target)
atheris.Fuzz()
'''


def test_atheris_finds_no_crash_in_the_normaliser_or_the_comment_validation(tmp_path):
    pytest.importorskip("atheris")
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "fuzz.py"
    script.write_text(FUZZ_TARGET)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Done 20000 runs" in result.stderr
