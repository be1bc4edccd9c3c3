"""Small highspy helpers: a quiet, single-threaded Highs instance, work limits and status names.

Every correctness path is bounded by *work* (simplex iterations, branch-and-bound nodes, MIP LP iterations),
never by the clock, so the same inputs give the same plan however busy the machine is. A wall-clock limit
remains only as a last resort (``LAST_RESORT_S``) against a pathological solve; it is re-armed per solve.
"""

from __future__ import annotations

import os
import threading

import highspy

_banner_lock = threading.Lock()
_banner_done = False

# One thread: HiGHS' scheduler is global to the process and must see one thread count from every instance;
# one thread also keeps the MIP's search order fixed and leaves the second core to the rest of the pipeline.
THREADS = 1
LAST_RESORT_S = 60.0  # per solve; a solve that reaches it falls back (greedy / self-consumption)


def new_highs(time_limit_s: float | None = LAST_RESORT_S, presolve: bool = True) -> highspy.Highs:
    """A Highs instance with console output off, one thread and the last-resort time limit.

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
    h.setOptionValue("threads", THREADS)
    h.setOptionValue("random_seed", 0)
    if time_limit_s is not None:
        h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("presolve", "on" if presolve else "off")


MS = highspy.HighsModelStatus
OPTIMAL = MS.kOptimal
INFEASIBLE_STATUSES = {MS.kInfeasible, MS.kUnboundedOrInfeasible}
WORK_LIMIT_STATUSES = {MS.kIterationLimit, MS.kSolutionLimit, MS.kInterrupt}
TIME_LIMIT_STATUSES = {MS.kTimeLimit} | WORK_LIMIT_STATUSES


def run_timed(h: highspy.Highs, per_solve_s: float | None) -> None:
    """``h.run()`` with the last-resort time limit re-armed for THIS solve.

    HiGHS compares ``time_limit`` with the Highs object's total run time since it was created, so a model
    re-solved warm thousands of times (the Replanner) would reach a fixed limit after its first seconds of
    solving and fall back from then on. Work limits (iterations, nodes) count per run and need no re-arming.
    """
    if per_solve_s is not None:
        h.setOptionValue("time_limit", float(h.getRunTime() + per_solve_s))
    h.run()
