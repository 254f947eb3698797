"""What a worker process does to stay tied to the ``cms-mock --workers N`` process that started it.

If the supervisor is killed outright (``kill -9``), nothing tells its workers: they would go on
serving and holding the port, and a new ``cms-mock`` could not start. Linux lets a process ask to
be sent a signal when its parent dies (``PR_SET_PDEATHSIG``): each worker asks for SIGTERM, and
uvicorn then shuts it down gracefully, committing what is queued.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

logger = logging.getLogger(__name__)

SUPERVISOR = "CMS_MOCK_SUPERVISOR_PID"
"""Set by ``cms-mock`` for its workers: the pid they must not outlive."""

_PR_SET_PDEATHSIG = 1


def tie_to_supervisor(supervisor: int) -> None:
    """Ask for SIGTERM when the parent dies; exit now if it already has."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            logger.warning("cannot ask to be stopped with the supervisor: %s", os.strerror(ctypes.get_errno()))
    if os.getppid() != supervisor:  # it died before we asked
        raise SystemExit("cms-mock: the supervising process is gone; this worker stops")
