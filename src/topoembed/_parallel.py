"""Independent tasks on local processes: one runner for the benchmark grid and the ensemble."""
from __future__ import annotations

import ast
import logging
import multiprocessing
import os
import sys
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from ._validate import INTERFACE, InputError

__all__ = ["imap", "Pool", "resolve_jobs", "usable_cpus", "thread_budget"]

log = logging.getLogger(__name__)
#: whether this process has said that its script is unguarded (a fact of the script, not of each pool)
_SAID_UNGUARDED = False


#: Longest wait for a worker's result before the parent looks at its signals again (Ctrl-C).
WAKE_S = 0.5


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, e.g. a cluster job's allocation)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS / Windows
        return max(1, os.cpu_count() or 1)


#: Threads a worker of :class:`Pool` may use (set by its initialiser); None in the main process.
_WORKER_THREADS: int | None = None


def thread_budget() -> int:
    """Threads this process may use for its own parallel work: its share of the CPUs inside a
    :class:`Pool` worker, else every usable CPU."""
    return _WORKER_THREADS or usable_cpus()


def resolve_jobs(jobs, tasks: int) -> int:
    """Worker processes for ``tasks`` tasks: ``jobs`` if an integer ≥ 1, else ("auto") one per
    usable CPU; never more than there are tasks."""
    if jobs == "auto" or jobs is None:
        jobs = usable_cpus()
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise InputError(f"jobs={jobs!r} must be 'auto' or an integer >= 1")
    return max(1, min(int(jobs), int(tasks)))


def _limit_threads(threads: int, interface: str = "python") -> None:
    """Worker initialiser: share the CPUs between the workers instead of letting every
    worker's BLAS use all of them (oversubscription slowed 2 workers on 2 cores by ~1.4x),
    leave Ctrl-C to the parent, and name settings in the parent's words (``interface``: a
    subsample's warning said ``symmetrize='or'`` in a command-line run)."""
    global _WORKER_THREADS
    _WORKER_THREADS = max(1, int(threads))
    INTERFACE["name"] = interface
    import signal

    # Ctrl-C reaches the whole process group: the parent handles it and ends the workers
    # (Pool.__exit__); a worker of its own would only print a traceback
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        pass


def _preload(modules: tuple) -> None:
    """A first task for every worker: import what its tasks will need, so that the workers'
    start-up runs while the parent is still busy (see :class:`Pool`)."""
    import importlib

    for name in modules:  # "package.module", or "package.module:function" to call as well
        module, _, function = name.partition(":")
        try:
            loaded = importlib.import_module(module)
        except ImportError:  # an optional engine: the task falls back as it would anyway
            continue
        if function:
            getattr(loaded, function)()


def _is_main_test(node) -> bool:
    """``__name__ == "__main__"`` (either way round)."""
    if not (isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.Eq)):
        return False
    sides = [node.left, node.comparators[0]]
    return (any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides)
            and any(isinstance(s, ast.Constant) and s.value == "__main__" for s in sides))


def unguarded_script_call() -> bool:
    """Is topoembed being called from the top level of a script run as ``python script.py``,
    outside an ``if __name__ == "__main__":`` block? Spawned workers import the script again
    (Python's "spawn" start method), which would run the call again in every worker and
    break the pool. Jupyter, ``python -c``, the command line and guarded scripts: False."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path or not str(path).endswith(".py") or not os.path.exists(path):
        return False
    frame, line = sys._getframe(), None
    while frame is not None:  # the main module's own line that led here
        if frame.f_globals.get("__name__") == "__main__" and frame.f_code.co_name == "<module>":
            line = frame.f_lineno
        frame = frame.f_back
    if line is None:
        return False
    try:
        tree = ast.parse(open(path, encoding="utf-8").read())
    except (OSError, SyntaxError, ValueError):
        return False
    return not any(isinstance(n, ast.If) and _is_main_test(n.test) and n.lineno <= line <= (n.end_lineno or n.lineno)
                   for n in ast.walk(tree))


def main_from_stdin() -> bool:
    """Is the main script read from standard input (``python - <<EOF``, ``python < script.py``)?
    Spawned workers would try to run it again from a file named ``<stdin>`` and die at start."""
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    return path is not None and not os.path.exists(str(path))


class Pool:
    """Worker processes kept across several batches of tasks (one start-up cost).

    ``with Pool(jobs) as pool: for r in pool.imap(fn, args): ...``; ``jobs`` <= 1 runs the
    tasks in this process. Results come in completion order: callers that need an order
    sort them. A worker that dies (the out-of-memory killer, most often) ends the run with
    an :class:`InputError` whose message ends with ``killed_hint``. ``preload``: modules every
    worker imports as soon as the pool starts, before its first task arrives.
    """

    def __init__(self, jobs: int, killed_hint: str = "run the same command again with fewer --jobs",
                 preload: tuple = ()):
        self.jobs = int(jobs)
        self.killed_hint = killed_hint
        self.preload = tuple(preload)
        self._pool = None

    def __enter__(self):
        if self.jobs > 1 and unguarded_script_call():
            global _SAID_UNGUARDED  # said once per script: the ensemble's and the part search's pools would each say it
            say, _SAID_UNGUARDED = (log.info if _SAID_UNGUARDED else log.warning), True
            say("running on 1 process instead of %d: this script calls topoembed outside "
                "`if __name__ == \"__main__\":`, and worker processes (Python's spawn) would run the "
                "script again; put the call under that line to use %d processes", self.jobs, self.jobs)
            self.jobs = 1
        if self.jobs > 1 and main_from_stdin():
            log.warning("running on 1 process instead of %d: this script is read from standard input, which "
                        "worker processes (Python's spawn) cannot read again; save it as a file, with the call "
                        "under `if __name__ == \"__main__\":`, to use %d processes", self.jobs, self.jobs)
            self.jobs = 1
        if self.jobs > 1:
            # spawn, not fork: forking a process whose BLAS/OpenMP threads hold locks can deadlock
            self._pool = ProcessPoolExecutor(max_workers=self.jobs, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_limit_threads,
                                             initargs=(max(1, usable_cpus() // self.jobs), INTERFACE["name"]))
            if self.preload:  # one per worker: starts them all now, each importing in the background
                for _ in range(self.jobs):
                    self._pool.submit(_preload, self.preload)
        return self

    def __exit__(self, exc_type, exc, tb):
        if self._pool is not None:
            if exc_type is not None:  # Ctrl-C, SIGTERM or an error: stop the workers now, not after their tasks
                for proc in list(getattr(self._pool, "_processes", {}).values()):
                    proc.terminate()
            self._pool.shutdown(wait=True, cancel_futures=True)
        return False

    def imap(self, fn, args: list):
        if self._pool is None:
            yield from map(fn, args)
            return
        try:
            pending = {self._pool.submit(fn, a) for a in args}
            while pending:
                # short waits, so that a Ctrl-C the kernel hands to another thread (torch's, BLAS's)
                # is raised here within WAKE_S instead of after the running tasks
                done, pending = wait(pending, timeout=WAKE_S, return_when=FIRST_COMPLETED)
                for fut in done:
                    yield fut.result()
        except BrokenProcessPool as exc:
            raise InputError(f"a worker process died before its task finished, most likely killed by the "
                             f"out-of-memory killer; {self.killed_hint}") from exc


def imap(fn, args: list, jobs: int, killed_hint: str = "run the same command again with fewer --jobs"):
    """Results of ``fn`` over ``args`` in ``jobs`` processes (:class:`Pool`, one batch)."""
    with Pool(jobs, killed_hint) as pool:
        yield from pool.imap(fn, args)
