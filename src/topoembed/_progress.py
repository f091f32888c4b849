"""Feedback on long work: a tqdm bar on a terminal or in Jupyter, one log line per step elsewhere.

A bar redrawn into a log file (a cluster job's stderr) becomes one line of thousands of
characters; off a terminal each step is logged instead, on the ``topoembed.progress``
logger (the command line shows it at its default verbosity; ``-q`` silences both).
"""
from __future__ import annotations

import contextlib
import logging
import multiprocessing
import sys

log = logging.getLogger("topoembed.progress")


class Progress:
    """``total`` steps of ``desc``; :meth:`step` after each. ``enabled`` False: silent.
    ``log_every``: off a terminal, log every this many steps (and the last)."""

    def __init__(self, total: int, desc: str, unit: str, enabled: bool = True, log_every: int = 1):
        self.desc, self.total, self.done, self.enabled = desc, total, 0, enabled
        self.log_every = max(1, int(log_every))
        self.bar = None
        if enabled and interactive():
            from tqdm import tqdm  # the plain bar: tqdm.auto warns in Jupyter without ipywidgets

            self.bar = tqdm(total=total, desc=desc, unit=unit, leave=False)

    def now(self, label: str) -> None:
        """Name the work that starts now (the bar shows it while it runs, not the step before)."""
        if self.bar is not None:
            self.bar.set_postfix_str(f"{label}…")

    def note(self, message: str) -> None:
        """Work outside the counted steps (the kNN graph of all points, the consensus): on the
        bar while it runs, and one log line off a terminal, where a bar is not drawn."""
        if self.bar is not None:
            self.bar.set_postfix_str(message)
        elif self.enabled:
            log.info("%s: %s", self.desc, message)

    def step(self, message: str) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.set_postfix_str(message.split(":")[0])
            self.bar.update(1)
        elif self.enabled and (self.done % self.log_every == 0 or self.done == self.total):
            log.info("%s %d/%d: %s", self.desc, self.done, self.total, message)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def interactive() -> bool:
    """A person watches: stderr is a terminal, or the code runs in a Jupyter kernel (whose
    output shows a text bar redrawn in place)."""
    return sys.stderr.isatty() or "ipykernel" in sys.modules


def scanpy_verbosity() -> int | None:
    """``sc.settings.verbosity`` as an int (0 errors, 1 warnings: scanpy's default, 2 info,
    3 hint), or None where scanpy is absent."""
    try:
        import scanpy as sc

        return int(sc.settings.verbosity)
    except Exception:  # noqa: BLE001 - no scanpy settings
        return None


def scanpy_wants_progress() -> bool:
    """Progress for the Python API unless scanpy's verbosity is below its default (warnings):
    ``sc.settings.verbosity = 0`` (errors only) silences it, as it silences scanpy."""
    level = scanpy_verbosity()
    return level is None or level >= 1


class _Unheard(logging.Handler):
    """The ``topoembed`` logger's last resort: a record that no handler of the user's would take
    (logging not configured, as in most notebooks) goes to scanpy's log where scanpy is loaded,
    shown at its verbosity as scanpy's own lines, else to stderr as Python's own last resort
    does. Without it a handler that collects warnings (``pipeline.collect_warnings``) would
    silence them: Python's last resort speaks only where no handler exists at all."""

    def emit(self, record: logging.LogRecord) -> None:
        if _INNER_RUNS or multiprocessing.parent_process() is not None:
            return  # a subsample's run (or a worker's): its warnings are in its record, not the user's log
        logger = logging.getLogger(record.name)
        while logger is not None:
            if any(h is not self and not getattr(h, "collects_only", False) for h in logger.handlers):
                return  # the user's (or the command line's) handlers have it
            logger = logger.parent if logger.propagate else None
        scanpy_logging = sys.modules.get("scanpy.logging")
        if scanpy_logging is not None:
            level = {logging.DEBUG: "debug", logging.INFO: "info"}.get(record.levelno, "warning")
            if record.levelno >= logging.ERROR:
                level = "error"
            getattr(scanpy_logging, level)(record.getMessage())
        elif logging.lastResort is not None and record.levelno >= logging.lastResort.level:
            logging.lastResort.handle(record)


#: runs inside an ensemble, a prevalence check or a part's screen now under way (:func:`inner_run`)
_INNER_RUNS = 0


@contextlib.contextmanager
def inner_run():
    """A subsample's run (``pipeline.run(final=False)``): its warnings are kept in its record and
    not said to a user who set up no logging; ten subsamples would repeat the same warning."""
    global _INNER_RUNS
    _INNER_RUNS += 1
    try:
        yield
    finally:
        _INNER_RUNS -= 1


@contextlib.contextmanager
def filtered(targets, keep):
    """Inside the block, the loggers or handlers ``targets`` pass only the records that ``keep``
    (a record -> bool) accepts."""
    targets = list(targets)
    for target in targets:
        target.addFilter(keep)
    try:
        yield
    finally:
        for target in targets:
            target.removeFilter(keep)


def _not_a_warning(record) -> bool:
    return record.levelno < logging.WARNING


@contextlib.contextmanager
def tentative_run():
    """A run whose result may be dropped (:func:`topoembed.ensemble._surface_on_all_points`): its
    warnings stay in its record (the collector its run adds) and reach none of the handlers there
    before it (the command line's, the user's, an outer run's collector), so a dropped run's
    "reporting 0 loops" does not contradict the verdict given; its progress lines still show."""
    handlers = logging.getLogger("topoembed").handlers + logging.getLogger().handlers
    with filtered(handlers, _not_a_warning), inner_run():
        yield


_UNHEARD = _Unheard()
logging.getLogger("topoembed").addHandler(_UNHEARD)
#: scanpy's verbosity (0 errors ... 4 debug) as the level of the ``topoembed`` logger; never above
#: warnings, which summary.json and ``uns[key]["warnings"]`` collect (scanpy's log hides them at 0).
#: topoembed's info lines (the settings chosen, each check's reading) are details: they show at
#: scanpy's hint level, 3, while 2 (info) gives te.tl.run's closing lines only, as scanpy's steps do.
_SCANPY_LEVELS = {0: logging.WARNING, 1: logging.WARNING, 2: logging.WARNING, 3: logging.INFO, 4: logging.DEBUG}


def follow_scanpy_verbosity() -> None:
    """Where the user has not configured logging (no handler on the root logger) nor set the
    ``topoembed`` logger's level, that level follows ``sc.settings.verbosity``, as scanpy's own
    messages do: 3 (hint) shows the info lines (and scanpy's log, :class:`_Unheard`, hides the
    warnings at 0). Called by the AnnData API."""
    pkg = logging.getLogger("topoembed")
    if logging.getLogger().handlers or (pkg.level != logging.NOTSET and not getattr(pkg, "_follows_scanpy", False)):
        return
    level = scanpy_verbosity()
    if level is None:
        return
    pkg.setLevel(_SCANPY_LEVELS.get(max(0, min(level, 4)), logging.WARNING))
    pkg._follows_scanpy = True


@contextlib.contextmanager
def about(label: str):
    """Inside the block, topoembed's warnings begin with ``label`` (a group's runs: "Subset = 5wk:
    the kNN graph has ..."), so a log of many runs says which one each warning is about."""
    make = logging.getLogRecordFactory()
    prefix = f"{label}: ".replace("%", "%%")

    def labelled(*args, **kwargs):
        record = make(*args, **kwargs)
        if record.levelno >= logging.WARNING and record.name.startswith("topoembed"):
            record.msg = prefix + str(record.msg)
        return record

    logging.setLogRecordFactory(labelled)
    try:
        yield
    finally:
        logging.setLogRecordFactory(make)


def scanpy_log(msg: str, level: str = "info", **kw):
    """scanpy's ``logg.info`` (or ``hint``), shown at verbosity ≥ 2 (3) as scanpy's own lines;
    returns its time stamp (``time=`` of a closing line), None where scanpy is absent."""
    try:
        from scanpy import logging as logg
    except ImportError:
        return None
    return getattr(logg, level)(msg, **kw)
