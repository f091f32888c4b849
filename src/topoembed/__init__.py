"""topoembed: loops in high-dimensional data via spectral-distance persistent homology.

``import topoembed as te`` gives the scanpy-style namespaces ``te.pp``, ``te.tl`` and
``te.pl`` (AnnData in, AnnData out) on top of the array core: ``graph``, ``spectral``,
``homology``, ``loops``, ``datasets`` and ``pipeline``.
"""
from ._version import __version__  # noqa: F401

from . import _progress  # noqa: E402,F401 - the log's last resort (warnings heard without logging set up)
from . import datasets, graph, homology, loops, pipeline, spectral  # noqa: E402,F401


def __getattr__(name):
    # pp/tl/pl import scanpy/anndata: load them on first use to keep `import topoembed` light
    if name in ("pp", "tl", "pl"):
        import importlib

        mod = importlib.import_module(f".{name}", __name__)
        globals()[name] = mod
        return mod
    raise AttributeError(f"module 'topoembed' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), "pp", "tl", "pl"})
