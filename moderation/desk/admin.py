"""User management for admins: add moderators, disable and re-enable them, unlock locked accounts."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for

from moderation import accounts, validation
from moderation.db import get_session
from moderation.desk import bp
from moderation.desk.queue import shown
from moderation.desk.signin import current_user, signed_in
from moderation.schema import User

ACTIONS = {"disable": accounts.disable_user, "enable": accounts.enable_user, "unlock": accounts.unlock_user}


@bp.get("/users")
@signed_in("admin")
def users():
    return render_template("desk/users.html", users=accounts.list_users(get_session()), roles=accounts.ROLES,
                           min_length=accounts.MIN_PASSWORD_LENGTH)


@bp.post("/users")
@signed_in("admin")
def add_user():
    form = request.form
    # A name is shown on every page and in the audit log: no control characters (PostgreSQL refuses a NUL byte).
    if problem := validation.text_problem(form.get("name", "").strip(), User.name.type.length):
        flash(f"User not added: the name {problem}.", "error")
        return redirect(url_for("desk.users"))
    try:
        accounts.add_user(get_session(), form.get("name", ""), form.get("role", ""), form.get("password", ""))
    except accounts.AccountError as error:
        get_session().rollback()
        flash(f"User not added: {error}.", "error")
    else:
        flash(f"User {form.get('name', '').strip()!r} added.", "info")
    return redirect(url_for("desk.users"))


@bp.post("/users/<name>/<action>")
@signed_in("admin")
def change_user(name: str, action: str):
    if action not in ACTIONS:
        abort(404)
    if validation.text_problem(name, User.name.type.length):
        flash(f"Nothing changed: no user named {shown(name)}.", "error")
        return redirect(url_for("desk.users"))
    if action == "disable" and name == current_user().name:
        flash("You cannot disable your own account.", "error")
        return redirect(url_for("desk.users"))
    try:
        ACTIONS[action](get_session(), name)
    except accounts.AccountError as error:
        flash(f"Nothing changed: {error}.", "error")
    else:
        flash(f"User {name!r}: {action}d.", "info")
    return redirect(url_for("desk.users"))
