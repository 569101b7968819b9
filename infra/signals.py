"""SIGTERM as Ctrl-C: uvicorn, after its graceful shutdown, raises the signal it caught
again, and SIGTERM's default action ends the process there, without running
``finally`` blocks or atexit hooks (the embedded Postgres's stop, ``shop serve all``'s
children). Raising KeyboardInterrupt instead lets them run."""

from __future__ import annotations

import signal
import threading


def exit_on_sigterm_as_on_ctrl_c() -> None:
    """Unless the process already handles SIGTERM (``shop projections run``)."""
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    ):
        signal.signal(signal.SIGTERM, signal.default_int_handler)
