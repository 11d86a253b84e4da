"""Signing in and out, and the guard every desk page sits behind."""

from __future__ import annotations

import functools
import re
from datetime import timedelta
from urllib.parse import urlsplit

from flask import abort, current_app, flash, g, redirect, render_template, request, session, url_for

from moderation import accounts, validation
from moderation.db import get_session
from moderation.desk import bp
from moderation.schema import User

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # a CR or LF in a Location header is refused by Werkzeug (a 500)


def current_user() -> User | None:
    """The signed-in user of this request, or None (looked up once per request)."""
    if "desk_user" not in g:
        token = session.get("token")
        g.desk_user = accounts.user_for_token(get_session(), token) if isinstance(token, str) else None
    return g.desk_user


def signed_in(*roles: str):
    """Let only signed-in users (of ``roles``, when given) see the page; others go to the sign-in form."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            user = current_user()
            if user is None:
                return redirect(url_for("desk.login", next=request.full_path if request.method == "GET" else None))
            if roles and user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def safe_next(target: str | None, default: str = "desk.queue") -> str:
    """Only ever send the browser back to a desk page: never to another site (open redirect)."""
    if target and not _CONTROL.search(target):
        try:
            parts = urlsplit(target)
        except ValueError:  # "http://[": not a desk page
            return url_for(default)
        if not parts.scheme and not parts.netloc and parts.path.startswith("/moderate") and "\\" not in target:
            return target
    return url_for(default)


@bp.context_processor
def _desk_globals() -> dict:
    return {"user": current_user()}


@bp.route("/login", methods=["GET", "POST"])
def login():
    """The sign-in form; a good password starts a session, repeated failures lock the account."""
    if request.method == "GET":
        if current_user() is not None:
            return redirect(safe_next(request.args.get("next")))
        return render_template("desk/login.html", next=request.args.get("next", ""))
    config = current_app.config
    name = request.form.get("name", "")
    if validation.text_problem(name.strip(), User.name.type.length):
        name = ""  # no user has such a name (PostgreSQL would refuse its NUL byte): the usual refusal, in the usual time
    result = accounts.authenticate(
        get_session(), name, request.form.get("password", ""),
        max_failures=config["LOGIN_MAX_FAILURES"], lockout=timedelta(seconds=config["LOGIN_LOCKOUT_SECONDS"]),
    )
    if result.user is None:
        if result.locked_until is not None:
            message = "Too many failed sign-ins: this account is locked for a while. Try later, or ask an admin to unlock it."
        else:
            message = "Wrong name or password."
        return render_template("desk/login.html", error=message, name=request.form.get("name", ""), next=request.form.get("next", "")), 401
    session.clear()  # a fresh session (and CSRF token) at every sign-in: no fixation
    session.permanent = True
    session["token"] = accounts.start_session(get_session(), result.user, current_app.permanent_session_lifetime)
    return redirect(safe_next(request.form.get("next")))


@bp.post("/logout")
def logout():
    token = session.get("token")
    if isinstance(token, str):
        accounts.end_session(get_session(), token)
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("desk.login"))


@bp.errorhandler(403)
def _forbidden(_error):
    return render_template("desk/error.html", title="Not allowed", message="Your account cannot open this page."), 403


@bp.errorhandler(404)
def _not_found(error):
    return render_template("desk/error.html", title="Not found", message=error.description or "There is nothing here."), 404
