"""A sample news site that moderates its comments through our API: the pattern a site copies.

`moderation demo` serves an article with the usual "Leave a Reply" form. The site's own
backend (this module) posts each comment to POST /api/v1/comments with its site key,
server to server, and then:

- published: it shows under the article at once;
- pending: only its author sees it, marked "awaiting moderation" (the browser keeps the
  ids of the comments it sent in a cookie), until a moderator approves it;
- rejected: the author gets a polite message, and nobody sees it.

The site learns the fate of a held comment by polling GET /api/v1/comments/{id} when the
page is shown (a real site would rather receive our signed webhook). The site keeps its
own copy of every comment, as a real CMS would; here in memory, for the demo.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask, flash, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFProtect

DEFAULT_ARTICLE = Path(__file__).resolve().parents[2].parent / "shared" / "demo" / "article.txt"
_JUNK = ("Advertisements", "Leave a Reply")


@dataclass
class Article:
    id: str
    title: str
    paragraphs: list[str]
    section: str = "world"


def read_article(path: Path) -> Article:
    """Title on the first line, then paragraphs; drop the page furniture (ads, shortcodes, repeated captions)."""
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    title, paragraphs = lines[0], []
    for line in lines[1:]:
        if line.startswith("Leave a Reply"):
            break
        if line in _JUNK or (line.startswith("[") and line.endswith("]")) or line in paragraphs:
            continue
        paragraphs.append(line)
    return Article(id=path.stem, title=title, paragraphs=paragraphs)


@dataclass
class SiteComment:
    """The site's own record of a comment, and what our API said about it."""

    id: str  # the site's id, sent as external_id
    moderation_id: int | None
    name: str
    text: str
    status: str  # published / pending / rejected


@dataclass
class SiteStore:
    comments: list[SiteComment] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class ModerationApi:
    """The few calls a site makes to our API, with its site key; a timeout so a slow moderator never hangs the page."""

    def __init__(self, base_url: str, key: str, timeout: float = 5.0):
        self.base_url, self.key, self.timeout = base_url.rstrip("/"), key, timeout

    def _call(self, path: str, body: dict | None = None) -> tuple[int, dict]:
        request_ = urllib.request.Request(self.base_url + path, data=json.dumps(body).encode() if body is not None else None,
                                          headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request_, timeout=self.timeout) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            try:
                return error.code, json.load(error)
            except ValueError:
                return error.code, {}

    def submit(self, body: dict) -> tuple[int, dict]:
        return self._call("/api/v1/comments", body)

    def status(self, moderation_id: int) -> str | None:
        code, body = self._call(f"/api/v1/comments/{moderation_id}")
        return body.get("status") if code == 200 else None


def create_demo_app(api_url: str, site_key: str, article_path: Path = DEFAULT_ARTICLE, secret_key: str | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY=secret_key or uuid.uuid4().hex, SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax")
    CSRFProtect(app)
    article, store, api = read_article(Path(article_path)), SiteStore(), ModerationApi(api_url, site_key)

    def refresh_held() -> None:
        """Ask our API about comments still awaiting moderation (polling; webhooks spare this)."""
        for comment in [c for c in store.comments if c.status == "pending" and c.moderation_id]:
            try:
                comment.status = api.status(comment.moderation_id) or comment.status
            except OSError:
                return  # moderation service unreachable: show what we know

    @app.get("/")
    def article_page():
        refresh_held()
        mine = set(session.get("mine", []))
        visible = [c for c in store.comments if c.status == "published" or (c.status == "pending" and c.id in mine)]
        return render_template("demo/article.html", article=article, comments=visible, form=session.pop("form", {}))

    @app.post("/comments")
    def post_comment():
        form = {name: request.form.get(name, "").strip() for name in ("comment", "author", "email", "url")}
        missing = [label for name, label in (("comment", "comment"), ("author", "name"), ("email", "email")) if not form[name]]
        if missing:
            flash(f"Please fill in the required fields: {', '.join(missing)}.", "error")
            session["form"] = form
            return redirect(url_for("article_page") + "#respond")
        site_id = uuid.uuid4().hex
        body = {
            "text": form["comment"], "external_id": site_id,
            "author": {"name": form["author"], "email": form["email"], "url": form["url"] or None,
                       "ip": request.remote_addr, "user_agent": request.headers.get("User-Agent", "")[:1000]},
            "article": {"id": article.id, "url": request.host_url, "title": article.title, "section": article.section},
        }
        try:
            code, answer = api.submit(body)
        except OSError:
            code, answer = 503, {}
        if code in (200, 201):
            comment = SiteComment(site_id, answer["id"], form["author"], form["comment"], answer["status"])
            with store.lock:
                store.comments.append(comment)
            session["mine"] = [*session.get("mine", []), site_id][-50:]
            if comment.status == "rejected":
                flash("Thank you. Your comment could not be published: it looks like spam or breaks our community rules.", "refused")
            elif comment.status == "pending":
                flash("Thank you. Your comment is awaiting moderation.", "info")
            return redirect(url_for("article_page") + (f"#comment-{site_id}" if comment.status != "rejected" else "#respond"))
        session["form"] = form
        if code == 422:
            fields = ", ".join(answer.get("error", {}).get("fields", {}).values())
            flash(f"Your comment was not accepted: {fields or 'please check it'}.", "error")
        elif code == 429:
            flash("You are commenting very fast. Please wait a minute and try again.", "error")
        else:
            flash("We could not post your comment just now. Please try again in a moment.", "error")
        return redirect(url_for("article_page") + "#respond")

    return app
