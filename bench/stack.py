"""What every pipeline benchmark runs on: Postgres and Redis (the machine's, or throwaway ones as
in the tests), a fresh migrated database and Redis db, and the environment for Docket's processes."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@contextmanager
def bench_env() -> Iterator[dict]:
    from tests import services

    throwaway = services.Throwaway()
    try:
        pg_url, drop = services.fresh_database(services.postgres(throwaway))
        redis_url = services.claim_redis_db(services.redis_server(throwaway))
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKET_")}
        env.update(DOCKET_DATABASE_URL=pg_url, DOCKET_REDIS_URL=redis_url, DOCKET_DATA_DIR=tempfile.mkdtemp(),
                   DOCKET_EXTRA_ANALYZERS="bench.instruments", DOCKET_LOG_LEVEL="WARNING",
                   # A benchmark measures throughput, not the abuse limits in front of it.
                   DOCKET_RATE_LIMIT="1000000/minute", DOCKET_SUBMIT_RATE_LIMIT="1000000/minute",
                   PYTHONPATH=str(ROOT))
        subprocess.run([str(BIN / "docket"), "migrate"], env=env, check=True, capture_output=True)
        yield env
        drop()
        services.release_redis_db(redis_url)
    finally:
        throwaway.close()
