"""The files of the staged command line, one per stage (graph, distances, diagrams, detection, loops).

Each is an ``.npz`` (or the detection's ``.json``) that carries a record of the stage that made
it: which stage, the settings it depended on (:data:`topoembed.params.STAGE_PARAMS`), a
fingerprint of the points it saw, its time and warnings. A later stage reads its inputs with
the loaders here and refuses one whose record disagrees with its own settings or points
(:func:`check_record`), so a workflow cannot mix stages made otherwise.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ._validate import InputError
from .io import to_jsonable, write_npz
from .summary import PER_POINT

__all__ = ["STAGE_KEY", "points_fingerprint", "write_stage", "read_stage", "check_record", "load_graph",
           "load_distance_matrix", "diagram_arrays", "write_diagrams", "load_diagrams", "load_detection", "load_loops",
           "write_part_plan", "load_part_plan"]


# ---------------------------------------------------------------- staged files (one per CLI stage)
#: Name of the entry that holds a stage file's record (JSON): which stage made it, with which
#: parameters, on which points, in how long. A later stage refuses an input whose record
#: disagrees with its own options (:func:`check_record`), so a workflow cannot mix stages.
STAGE_KEY = "topoembed_stage"


def points_fingerprint(X) -> dict:
    """n, p and a hash of the points (float64, C order): tells whether two stages saw the same input."""
    import hashlib

    X = np.ascontiguousarray(X, dtype=np.float64)
    return {"n": int(X.shape[0]), "p": int(X.shape[1]), "sha1": hashlib.sha1(X.tobytes()).hexdigest()[:16]}


def write_stage(path, record: dict, **arrays) -> None:
    """An ``.npz`` of ``arrays`` plus the stage record, written atomically."""
    write_npz(path, **arrays, **{STAGE_KEY: np.array(json.dumps(to_jsonable(record)))})


def read_stage(path, what: str, made_by: str) -> tuple[dict, dict | None]:
    """(arrays, record) of an ``.npz`` stage file; record is None for an ``.npz`` without one
    (made by hand or by an older version). ``what``/``made_by`` word the error messages."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} {str(path)!r} does not exist; make it with `{made_by}`")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:
        why = "it holds Python objects" if "allow_pickle" in str(exc) else exc  # numpy's hint is not for this case
        raise InputError(f"{path} is not an .npz {what} ({why}); make it with `{made_by}`") from None
    raw = arrays.pop(STAGE_KEY, None)
    return arrays, (None if raw is None else json.loads(str(raw)))


def check_record(record: dict | None, path, params: dict, points: dict | None = None) -> None:
    """Refuse a stage input made with other parameters or on other points than this step's.

    ``params``: this step's options (name → value); only the names the record also holds are
    compared. ``points``: :func:`points_fingerprint` of this step's input, if it has one."""
    if record is None:
        return
    made = record.get("params", {})
    diff = [k for k in params if k in made and _norm(made[k]) != _norm(params[k])]
    if diff:
        said = ", ".join(f"--{k.replace('_', '-')} {made[k]} (here {params[k]})" for k in diff)
        raise InputError(f"{path} was made by `topoembed {record.get('stage', '?')}` with {said}; remake it with "
                         "this step's options, or pass the same options here")
    if points is not None and record.get("points") and record["points"] != points:
        raise InputError(f"{path} was made from other points ({record['points']['n']} × {record['points']['p']}, "
                         f"hash {record['points']['sha1']}) than this step's input ({points['n']} × {points['p']}, "
                         f"hash {points['sha1']}); remake it from the same input")


def _norm(value):
    """Compare 1 with True and 1.0 with 1, as options read from a command line and from JSON."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def load_graph(path, n):
    """(A, record) from a `topoembed graph` file or a plain scipy sparse .npz."""
    import scipy.sparse as sp

    arrays, rec = read_stage(path, "graph file", f"topoembed graph INPUT --out {path}")
    try:
        A = sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=tuple(arrays["shape"]))
    except KeyError:
        raise InputError(f"{path} is not a sparse graph .npz (no data/indices/indptr); make it with "
                         "`topoembed graph`") from None
    if A.shape != (n, n):
        raise InputError(f"graph {path} is {A.shape[0]}×{A.shape[1]} but the input has {n} points")
    return A, rec


def load_distance_matrix(path):
    """(D, record) from a `topoembed distances` .npz or a plain square .npy."""
    p = Path(path)
    if p.suffix == ".npz":
        arrays, rec = read_stage(p, "distance file", "topoembed distances INPUT --out D.npz")
        if "D" not in arrays:
            raise InputError(f"{path} holds no distance matrix 'D'; make it with `topoembed distances`")
        D = arrays["D"]
    elif p.suffix == ".npy":
        if not p.exists():
            raise InputError(f"distance file {path!r} does not exist; make it with `topoembed distances`")
        D, rec = np.load(p, allow_pickle=False), None
    else:
        raise InputError(f"{path} must be a distance matrix .npz or .npy (from `topoembed distances`)")
    if D.ndim != 2 or D.shape[0] != D.shape[1]:
        raise InputError(f"{path} holds an array of shape {D.shape}, not a square distance matrix")
    if np.isnan(D).any():
        raise InputError(f"{path} contains NaN distances; recompute it")
    if not np.allclose(D, D.T, equal_nan=True):
        raise InputError(f"{path} is not symmetric; pass a distance matrix")
    return D, rec


def diagram_arrays(ph) -> dict:
    arrays = {f"H{d}": dgm for d, dgm in enumerate(ph["dgms"])}
    arrays["birth_edges_H1"] = ph["birth_edges"]
    arrays["thresh"] = np.array(ph["thresh"])
    arrays["scale"] = np.array(ph["scale"])
    arrays["exact"] = np.array(bool(ph.get("exact", True)))
    # H0 drops bars of length 0 (duplicates; a two-point side component under corrected effective
    # resistance), so its length is not the number of points: the file says it
    if "n_points" in ph:
        arrays["n_points"] = np.array(int(ph["n_points"]))
    return arrays


def write_diagrams(path, ph):
    write_npz(path, **diagram_arrays(ph))


def load_diagrams(path):
    """(ph, record) from a `topoembed homology` .npz: the dict homology.persistence returns."""
    arrays, rec = read_stage(path, "diagrams file", "topoembed homology D.npz --out H.npz")
    if "H1" not in arrays:
        raise InputError(f"{path} has no H1 diagram; run `topoembed homology` with --maxdim 1 or 2")
    dgms = [arrays[f"H{d}"] for d in range(3) if f"H{d}" in arrays]
    ph = {"dgms": dgms, "birth_edges": arrays.get("birth_edges_H1", np.zeros((len(dgms[1]), 2), dtype=int)),
          "thresh": float(arrays.get("thresh", np.inf)),
          "scale": float(arrays["scale"]) if "scale" in arrays else None,
          "exact": bool(arrays.get("exact", True))}
    if "n_points" in arrays:
        ph["n_points"] = int(arrays["n_points"])
    elif rec and rec.get("points"):
        ph["n_points"] = int(rec["points"]["n"])
    else:  # a file made by an older version without a record: H0's bars, one per point unless duplicates
        ph["n_points"] = len(dgms[0])
    return ph, rec


def load_detection(path):
    import json

    p = Path(path)
    if not p.exists():
        raise InputError(f"detection file {path!r} does not exist; make it with `topoembed detect`")
    try:
        doc = json.loads(p.read_text())
        det = doc["detection"]
    except (ValueError, KeyError):
        raise InputError(f"{path} is not a detection .json from `topoembed detect`") from None
    det["features"] = [int(f) for f in det.get("features", doc.get("features", []))]
    det["scores"] = {int(m): float(v) for m, v in det["scores"].items()}
    return det, (doc if "stage" in doc else None)


def load_loops(path, n):
    arrays, rec = read_stage(path, "loops file", "topoembed localize INPUT ... --out L.npz")
    if rec is None or "loops" not in rec:
        raise InputError(f"{path} is not a loops file from `topoembed localize`")
    found = []
    for i, lp in enumerate(rec["loops"]):
        lp = dict(lp)
        for f in PER_POINT:
            if f"{f}_{i}" in arrays:
                if len(arrays[f"{f}_{i}"]) != n:
                    raise InputError(f"{path} holds loop arrays of {len(arrays[f'{f}_{i}'])} points, not {n}")
                lp[f] = arrays[f"{f}_{i}"]
        found.append(lp)
    return found, arrays.get("birth_edges_H1"), rec


# ---------------------------------------------------------------- the part search's plan (`topoembed parts`)
def write_part_plan(path, planned, params: dict, points: dict, seconds: float) -> None:
    """The points screened of each part searched (:class:`topoembed.parts.Plan`; ``pick_0``,
    ``pick_1``, ...; ``n_searched`` of them) with the settings
    (:meth:`topoembed.params.Params.job_settings`) and points they were planned for."""
    record = {"stage": "parts", "params": params, "points": points, "n_searched": len(planned.picks),
              "part_sizes": [int(len(P)) for P in planned.parts], "timings": {"part_plan": float(seconds)},
              "partition": planned.record}
    write_stage(path, record, **{f"pick_{i}": np.asarray(P, dtype=np.int64) for i, P in enumerate(planned.picks)})


def load_part_plan(path, params: dict, points: dict) -> list:
    """The points screened of each part, from :func:`write_part_plan`'s file; refuses a plan made
    with other settings (``params``: this step's :meth:`topoembed.params.Params.job_settings`)
    or of other points."""
    arrays, rec = read_stage(path, "part plan", "topoembed parts INPUT --out PLAN")
    if rec is None or rec.get("stage") != "parts":
        raise InputError(f"{path} is not a part plan; make it with `topoembed parts INPUT --out PLAN`")
    check_record(rec, path, params, points)
    return [arrays[f"pick_{i}"] for i in range(int(rec["n_searched"]))]
