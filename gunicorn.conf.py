"""gunicorn settings for the Docket API (`gunicorn -c gunicorn.conf.py api:create_app()`; gunicorn
also reads this file by itself when started in this folder, as in the image's /app).

Event streams and `Prefer: wait` hold a server thread each for up to minutes. gthread workers with
many threads carry them cheaply — a thread parked on its Redis subscription costs a small stack
and no CPU, and never a database connection (the reads roll back before waiting) — while uploads,
hashing and page counting keep running in parallel instead of stalling one event loop, as they
would under gevent. The threads are shared, so each process caps its long-lived requests below its
thread count (DOCKET_LIVE_LIMIT, docket/live.py): ordinary requests always find a free thread,
a stream beyond the cap gets 503 + Retry-After and a wait beyond it is answered at once.
Measured with bench/events.py (README, "Serving live events").
"""
import os

# What the API writes under the data directory (uploads, page images, metrics) is private: set
# here, in the master, so every worker inherits it (gunicorn's own `umask` is for its sockets).
os.umask(0o077)

worker_class = "gthread"
workers = int(os.environ.get("DOCKET_API_WORKERS", "2"))
threads = int(os.environ.get("DOCKET_API_THREADS", "256"))
# Connections per process, held or idle in keep-alive: room for every thread and a queue.
worker_connections = max(1000, 4 * threads)


def post_fork(server, worker):
    # In each worker before the app loads, from the thread count it really runs with (a
    # --threads on the command line overrides the one above); an explicit setting wins.
    if not os.environ.get("DOCKET_LIVE_LIMIT"):
        from docket.live import limit_for_threads  # the same reserve as `docket serve`

        os.environ["DOCKET_LIVE_LIMIT"] = str(limit_for_threads(worker.cfg.threads))
