"""Child processes Docket starts (workers, the embedded Redis): they die with their parent and
are stopped politely first, by force if they must."""
from __future__ import annotations

import os
import signal
import subprocess


def die_with_parent() -> None:
    """In a child, before exec: Linux sends it SIGTERM when the process that started it dies,
    even by SIGKILL, so a worker or server Docket started never outlives `docket serve`."""
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux/glibc: the normal shutdown path still stops it
        pass


def stop_process(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    """Warm shutdown first (Celery finishes or hands back its current job), then force."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


RESTARTS_ENV = "DOCKET_WORKER_RESTARTS"


def may_restart(environ: dict, now: float, limit: int = 5, window: float = 300.0) -> bool:
    """Whether a worker that crashed may start itself again, as a supervisor would: at most
    `limit` times in `window` seconds, so a fault that recurs at once (bad configuration) ends
    the process instead of looping. Records this restart in `environ` (it survives the exec)."""
    recent = [float(t) for t in environ.get(RESTARTS_ENV, "").split(",") if t]
    recent = [t for t in recent if now - t < window]
    if len(recent) >= limit:
        return False
    environ[RESTARTS_ENV] = ",".join(f"{t:.3f}" for t in [*recent, now])
    return True
