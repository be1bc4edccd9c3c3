"""Small highspy helpers: a quiet Highs instance and status names."""

from __future__ import annotations

import os
import threading

import highspy

_banner_lock = threading.Lock()
_banner_done = False


def new_highs(time_limit_s: float | None = None, presolve: bool = True) -> highspy.Highs:
    """A Highs instance with console output off.

    HiGHS prints its copyright banner from C++ the first time an instance is made in a process, before any
    option can be set; we swallow that one line by pointing fd 1 at /dev/null for the first construction.
    """
    global _banner_done
    if not _banner_done:
        with _banner_lock:
            if not _banner_done:
                saved = os.dup(1)
                try:
                    devnull = os.open(os.devnull, os.O_WRONLY)
                    try:
                        os.dup2(devnull, 1)
                        h = highspy.Highs()
                    finally:
                        os.dup2(saved, 1)
                        os.close(devnull)
                finally:
                    os.close(saved)
                _banner_done = True
                _configure(h, time_limit_s, presolve)
                return h
    h = highspy.Highs()
    _configure(h, time_limit_s, presolve)
    return h


def _configure(h: highspy.Highs, time_limit_s: float | None, presolve: bool) -> None:
    h.setOptionValue("output_flag", False)
    h.setOptionValue("log_to_console", False)
    if time_limit_s is not None:
        h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("presolve", "on" if presolve else "off")


MS = highspy.HighsModelStatus
OPTIMAL = MS.kOptimal
INFEASIBLE_STATUSES = {MS.kInfeasible, MS.kUnboundedOrInfeasible}
TIME_LIMIT_STATUSES = {MS.kTimeLimit, MS.kIterationLimit, MS.kInterrupt}


def run_timed(h: highspy.Highs, per_solve_s: float | None) -> None:
    """``h.run()`` with a time limit for THIS solve.

    HiGHS compares ``time_limit`` with the Highs object's total run time since it was created, so a model
    re-solved warm thousands of times (the Replanner) would hit a fixed limit after its first few seconds of
    solving and fall back to greedy from then on. Re-arming the limit before every run keeps it per solve.
    """
    if per_solve_s is not None:
        h.setOptionValue("time_limit", float(h.getRunTime() + per_solve_s))
    h.run()
