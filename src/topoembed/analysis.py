"""The front door: one function that every way in calls.

``topoembed run``, ``te.tl.run`` (with or without ``neighbors_key``), ``topoembed run
--from-runs`` (the Snakemake ensemble) and the staged command line's last step end here or
in the same pieces, so the same input gets the same loop count, p-values, phases and
:class:`topoembed.verdict.Verdict` whichever way it came in:

1. validate the input and the settings once (:meth:`topoembed.pipeline.Params.validate`); an
   input of at most the default k = 100 points gets the union k = 10 graph instead, with a
   warning, and one of fewer than 400 points k = n // 4, with a note in ``result.notes``
   (:meth:`topoembed.pipeline.Params.for_small_input`);
2. analyse: subsample runs made elsewhere are combined (:func:`topoembed.ensemble.combine`);
   a precomputed graph (scanpy's) gets one run on all points
   (:func:`topoembed.prevalence.single_with_check`); otherwise all points are one run, or an
   ensemble of subsamples above :data:`topoembed.pipeline.ENSEMBLE_MIN_N` points
   (:func:`topoembed.ensemble.run`). A single run of at most that many points measures the
   prevalence of a doubtful loop (:func:`topoembed.prevalence.prevalence_stage`) in every case;
3. the verdict is :func:`topoembed.verdict.decide` on the loops found, read as
   ``result.verdict`` and rendered by the summary, the command line, ``adata.uns`` and the report.
"""
from __future__ import annotations

import dataclasses
import logging

from . import ensemble, pipeline, prevalence
from ._validate import InputError, check_identical_points, check_points, option

log = logging.getLogger(__name__)

__all__ = ["run"]


def run(X, params: pipeline.Params | None = None, *, A=None, from_runs: list | None = None, jobs="auto",
        progress: bool = False, small_input: bool = True, **overrides) -> pipeline.Result:
    """Analyse the points X (n × p) and return a :class:`topoembed.pipeline.Result` whose
    ``verdict`` is the answer.

    ``params`` or keyword overrides set the options (:class:`topoembed.pipeline.Params`).
    ``A``: a precomputed symmetric adjacency on all n points (scanpy's graph); the run then
    uses it instead of a kNN graph, on all points (no ensemble, no ``subsample``).
    ``from_runs``: results of :func:`topoembed.ensemble.run_subsample` made elsewhere (one
    cluster job each) to combine. ``jobs``: local processes for subsamples and checks
    ("auto": one per usable CPU). ``small_input``: a default k follows a small input's size
    (:meth:`topoembed.pipeline.Params.for_small_input`; not with ``A``, whose graph has its own k,
    nor with ``from_runs``, made with the k they record); False keeps k = 100 (the command line
    passes False for an explicit ``--k``).
    """
    params = dataclasses.replace(params or pipeline.Params(), **overrides)
    X = check_points(X, min_points=3)
    repeats = check_identical_points(X)
    if repeats is not None:
        log.warning(repeats)
    ignored = _ignored_sizes(params, X.shape[0], A, from_runs)
    for said in ignored:
        log.warning(said)
    warning = note = None
    if small_input and A is None and from_runs is None:  # a precomputed graph has its own k; runs made elsewhere theirs
        params, warning, note = params.for_small_input(X.shape[0])
    if warning is not None:
        log.warning(warning)
    if note is not None:
        log.info(note)
    result = _analyse(X, params, A, from_runs, jobs, progress)
    for said in (*ignored, repeats, warning):  # put in front: the small input's warning first, then the repeats'…
        if said is not None and said not in result.warnings:
            result.warnings.insert(0, said)
    if note is not None:
        result.notes.insert(0, note)
    return result


def _ignored_sizes(params, n: int, A, from_runs) -> list[str]:
    """Warnings for a ``subsample`` or ``subsample_size`` that these n points make idle or weak: a
    subsample of at least n points is all of them; one of more than
    :data:`topoembed.pipeline.ENSEMBLE_MIN_N` is a single run without the prevalence check; the
    subsamples' size sets an ensemble's runs, which one run on all points (at most
    ``ENSEMBLE_MIN_N``, or a precomputed graph) does not make."""
    said = []
    if params.subsample is not None and int(params.subsample) >= n:
        said.append(f"{option('subsample', int(params.subsample))} is at least the {n} points: all of them are "
                    "analysed")
    elif params.subsample is not None and int(params.subsample) > pipeline.ENSEMBLE_MIN_N:
        said.append(f"{option('subsample', int(params.subsample))} makes one run of more than "
                    f"{pipeline.ENSEMBLE_MIN_N:,} points, which gets no prevalence check; one run of 2,000 IPC cells "
                    "called no loop in 2 of 4 seeds, where the ensemble of all cells and subsamples of 1,000 found "
                    f"it. Leave {option('subsample')} out for an "
                    f"ensemble of {pipeline.SUBSAMPLE_SIZE}-point subsamples of all points, or take at most "
                    f"{pipeline.ENSEMBLE_MIN_N:,}")
    one_run = A is not None or (from_runs is None and params.n_runs(n) == 1)
    if int(params.subsample_size) != pipeline.SUBSAMPLE_SIZE and one_run:
        why = ("the precomputed graph makes one run on all of them" if A is not None else
               f"{option('subsample', int(params.subsample))} makes one run on a subset of them"
               if params.subsample is not None else
               f"at most {pipeline.ENSEMBLE_MIN_N:,} points are one run on all of them, unless "
               f"{option('n_subsamples', 10)} asks for an ensemble")
        said.append(f"{option('subsample_size', int(params.subsample_size))} sets the size of an ensemble's "
                    f"subsamples, and these {n:,} points make none: {why}")
    return said


def _analyse(X, params, A, from_runs, jobs, progress) -> pipeline.Result:
    """Step 2 of the module docstring, on checked points and settings."""
    n = X.shape[0]
    if A is not None and from_runs is not None:
        raise InputError("a precomputed graph and subsample runs made elsewhere exclude each other; pass one")
    if A is not None:
        if params.subsample is not None:
            raise InputError("a precomputed graph (neighbors_key) cannot be combined with subsample; "
                             "subsample the cells first")
        if A.shape != (n, n):
            raise InputError(f"the graph has shape {A.shape} but there are {n} points")
        # one run on all points: the graph covers them all, so there is nothing to subsample
        if n > int(params.max_points):
            raise InputError(f"a precomputed graph (scanpy's, neighbors_key) makes one run on all {n} points, above "
                             f"the dense limit of max_points={int(params.max_points)}; leave neighbors_key out "
                             "(neighbors_key=None, the default) to analyse them as an ensemble of subsamples, each with "
                             "its own graph")
        params = dataclasses.replace(params, n_subsamples=1)
        params.validate(n)
        return prevalence.single_with_check(X, params, jobs, progress, A=A)
    if from_runs is not None:
        return ensemble.combine(X, from_runs, params, jobs=jobs, progress=progress)
    params.validate(n)
    return ensemble.run(X, params, jobs=jobs, progress=progress)
