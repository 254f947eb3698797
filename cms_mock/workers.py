"""What a server process does to stay tied to the process that started it.

If that process is killed outright (``kill -9``), nothing tells the server: it would go on
serving and holding the port. Linux lets a process ask to be sent a signal when its parent dies
(``PR_SET_PDEATHSIG``): the server asks for SIGTERM, and uvicorn then shuts it down gracefully,
committing what is queued. A worker of ``cms-mock --workers N`` asks it of its supervisor; the
pytest plugin has the ``cms-mock`` it starts ask it of the test process, between fork and exec
(the request survives the exec), so no start of the server can outrun it.
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

STATE_DIR = "CMS_MOCK_STATE_DIR"
"""Set by ``cms-mock --workers N`` for its workers: the directory they share (the journal,
coverage counts and fault rules of ``state.local``)."""

_PR_SET_PDEATHSIG = 1

_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
"""Loaded once, at import: between fork and exec nothing may be loaded (another thread of the
parent could have held the loader's lock at the fork)."""


def tie_to_supervisor(supervisor: int) -> None:
    """Ask for SIGTERM when the parent, ``supervisor``, dies; exit now if it already has.

    The kernel watches the parent *thread* that forked this process: the supervisor must start
    it from a thread that lives as long as the server should (its main thread).
    """
    if _LIBC is not None and _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        logger.warning("cannot ask to be stopped with the supervisor: %s", os.strerror(ctypes.get_errno()))
    if os.getppid() != supervisor:  # it died before we asked
        raise SystemExit("cms-mock: the supervising process is gone; this server stops")
