"""Gunicorn server hooks for `moderation serve` (loaded with ``-c python:moderation.gunicorn_hooks``).

A worker that dies (killed, or restarted by gunicorn) leaves its metric files in
PROMETHEUS_MULTIPROC_DIR; without this, its live gauges (the model version it served)
would be reported for ever beside those of the worker that replaced it.
"""


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
