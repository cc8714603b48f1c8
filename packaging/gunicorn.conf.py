"""gunicorn settings for running Regulars in production.

    gunicorn -c packaging/gunicorn.conf.py 'plugin:create_app()'

Every value can be changed with an environment variable (README: "Run it in production"):
REGULARS_BIND (default 127.0.0.1:8000: put a TLS-terminating proxy in front), REGULARS_WORKERS
(processes, default 2), REGULARS_THREADS (threads each, default 8: a sidebar view mostly waits
on the helpdesk), REGULARS_MAX_REQUESTS (requests before a worker is replaced, default 20,000)
and REGULARS_MAX_REQUESTS_JITTER (a random extra up to this, default a tenth of it). The
service's own settings (REGULARS_*, DATABASE_URL) are read by the app.

What this file sets for the app, unless the environment already says otherwise:
- JSON logs (REGULARS_LOG_FORMAT=json), with one access line per request written by the app
  (gunicorn's own access log is off, so there is one line per request, with its request id);
- each worker's share of every helpdesk account's rate limit: 80 % of it divided by the
  workers (REGULARS_HELPDESK_BUDGET_SHARE);
- a folder the workers write their metrics to, so /metrics adds all of them up
  (PROMETHEUS_MULTIPROC_DIR, emptied at start).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

bind = os.environ.get("REGULARS_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("REGULARS_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("REGULARS_THREADS", "8"))
# A request that takes longer than this is stuck: the sidebar's own budget is 2.5 s.
timeout = 30
graceful_timeout = 20
keepalive = 5
# Recycle workers now and then, at different times (a random share of max_requests apart),
# so nothing grows without bound and never all workers at once.
max_requests = int(os.environ.get("REGULARS_MAX_REQUESTS", "20000"))
max_requests_jitter = int(os.environ.get("REGULARS_MAX_REQUESTS_JITTER", str(max_requests // 10)))
accesslog = None
errorlog = "-"
# Believe X-Forwarded-* only from the proxy on this host (see REGULARS_TRUSTED_PROXIES too).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

os.environ.setdefault("REGULARS_LOG_FORMAT", "json")
os.environ.setdefault("REGULARS_HELPDESK_BUDGET_SHARE", f"{0.8 / max(workers, 1):.4f}")

_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if not _metrics_dir:
    _metrics_dir = tempfile.mkdtemp(prefix="regulars-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir


def on_starting(server: Any) -> None:
    """Start with an empty metrics folder: figures of a previous run would be added in."""
    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)


def child_exit(server: Any, worker: Any) -> None:
    """Let the metrics of a worker that has gone stop counting as live."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
