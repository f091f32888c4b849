"""Feedback on long work: a tqdm bar on a terminal or in Jupyter, one log line per step elsewhere.

A bar redrawn into a log file (a cluster job's stderr) becomes one line of thousands of
characters; off a terminal each step is logged instead, on the ``topoembed.progress``
logger (the command line shows it at its default verbosity; ``-q`` silences both).
"""
from __future__ import annotations

import logging
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


def scanpy_log(msg: str, level: str = "info", **kw):
    """scanpy's ``logg.info`` (or ``hint``), shown at verbosity ≥ 2 (3) as scanpy's own lines;
    returns its time stamp (``time=`` of a closing line), None where scanpy is absent."""
    try:
        from scanpy import logging as logg
    except ImportError:
        return None
    return getattr(logg, level)(msg, **kw)
