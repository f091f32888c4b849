"""Independent tasks on local processes: one runner for the benchmark grid and the ensemble."""
from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

from ._validate import InputError

__all__ = ["imap"]


def imap(fn, args: list, jobs: int, killed_hint: str = "run the same command again with fewer --jobs"):
    """Results of ``fn`` over ``args``: in this process for ``jobs`` <= 1, else in that many
    worker processes (in completion order: callers that need an order sort the results). A
    worker that dies (the out-of-memory killer, most often) ends the run with an
    :class:`InputError` whose message ends with ``killed_hint``."""
    if jobs <= 1:
        yield from map(fn, args)
        return
    # spawn, not fork: forking a process whose BLAS/OpenMP threads hold locks can deadlock
    try:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            for fut in as_completed([pool.submit(fn, a) for a in args]):
                yield fut.result()
    except BrokenProcessPool as exc:
        raise InputError(f"a worker process was killed before its task finished, most likely by the "
                         f"out-of-memory killer; {killed_hint}") from exc
