"""Serving follows the registry: each worker notices a newly live version and swaps it in.

Every MODEL_CHECK_SECONDS a request asks the database which version is live (one tiny
query). When it differs from the one being served, a background thread loads and
verifies the new bundle while requests go on with the old model; only a bundle that
loads cleanly, and is still the live version once loaded (a rollback may have come
meanwhile), is swapped in, with one reference assignment, so no request is dropped
or sees half a model. A bundle that fails is logged and retried only after a while.
"""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask
from sqlalchemy.orm import Session

from moderation import metrics, registry

log = logging.getLogger(__name__)
RETRY_FAILED_SECONDS = 60.0


class ModelWatcher:
    def __init__(self, app: Flask, interval: float):
        self.app, self.interval = app, interval
        self.next_check = time.monotonic() + interval
        self.loading = threading.Lock()
        self.failed: dict[str, float] = {}  # version -> when it failed to load

    def served_version(self) -> str | None:
        service = self.app.extensions["moderation.service"]
        return service.assessor.model.version if service.assessor else None

    def check(self) -> None:
        """Cheap unless it is time to look: then one query, and maybe a background load."""
        now = time.monotonic()
        if now < self.next_check:
            return
        self.next_check = now + self.interval
        with Session(self.app.extensions["moderation.engine"]) as session:
            live = registry.live_version(session)
        if live is None or live == self.served_version():
            return
        if now - self.failed.get(live, -RETRY_FAILED_SECONDS) < RETRY_FAILED_SECONDS:
            return
        if self.loading.acquire(blocking=False):
            threading.Thread(target=self._swap_in, args=(live,), name=f"load-model-{live}", daemon=True).start()

    def _swap_in(self, version: str) -> None:
        from moderation.app import load_service

        try:
            config = dict(self.app.config)
            service = load_service({**config, "MODEL_DIR": str(registry.bundle_dir(config, version))})
            if service.assessor is None or service.assessor.model.version != version:
                raise RuntimeError(service.model_error or f"the bundle in the registry is not version {version}")
            with Session(self.app.extensions["moderation.engine"]) as session:
                live = registry.live_version(session)
            if live != version:  # rolled back (or replaced) while it loaded: serving it now would undo that
                log.info("model %s loaded but is no longer live (%s is); not swapped in", version, live)
                self.next_check = time.monotonic()  # look again at the next request
                return
            old = self.served_version()
            self.app.extensions["moderation.service"] = service  # one assignment: requests see old or new, never half
            if old:
                metrics.MODEL_INFO.labels(old).set(0)
            log.info("now serving model %s", version)
        except Exception as error:  # keep serving the old model whatever went wrong
            self.failed[version] = time.monotonic()
            log.error("model %s was not swapped in, the old one keeps serving: %s", version, error)
        finally:
            self.loading.release()


def init_app(app: Flask) -> None:
    watcher = ModelWatcher(app, float(app.config["MODEL_CHECK_SECONDS"]))
    app.extensions["moderation.model_watcher"] = watcher
    app.before_request(watcher.check)
