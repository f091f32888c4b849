"""The GPU paths of the loop stages (kNN candidates, eigendecomposition) and their CPU fallback.

CI has no GPU: the torch code is run on torch's CPU device, which executes the same
operations, and compared with the numpy/scikit-learn path; "auto" must fall back to the CPU
and "cuda" must fail early with a clear message.
"""
import numpy as np
import pytest

from topoembed import _device, datasets, graph, pipeline, spectral
from topoembed._validate import InputError

torch = pytest.importorskip("torch")


def test_torch_candidates_give_the_same_graph():
    """"cpu:0" is a torch device other than the numpy path's "cpu": the GPU branch, run on the CPU."""
    X = datasets.make("circle", n=400, d=20, sigma=0.2, seed=0).X
    want_idx, want_d = graph._exact_euclidean(X, 16)
    got_idx, got_d = graph._exact_euclidean(X, 16, device="cpu:0", chunk_bytes=1 << 16)  # several blocks
    np.testing.assert_array_equal(got_idx, want_idx)
    np.testing.assert_allclose(got_d, want_d)


def test_torch_eigh_matches_numpy(monkeypatch):
    X = datasets.make("circle", n=200, d=10, sigma=0.1, seed=1).X
    A = graph.knn_graph(X, k=10)
    cpu = spectral.laplacian_spectrum(A)
    monkeypatch.setattr(_device, "resolve", lambda d: "cpu:0")  # the torch branch, on the CPU
    gpu_path = spectral.laplacian_spectrum(A, device="cuda")
    np.testing.assert_allclose(gpu_path.eigvals, cpu.eigvals, atol=1e-10)
    # eigenvectors up to sign: the projector onto the first 5 nontrivial ones agrees
    P = lambda U: U[:, 1:6] @ U[:, 1:6].T  # noqa: E731
    np.testing.assert_allclose(P(gpu_path.eigvecs), P(cpu.eigvecs), atol=1e-8)


def test_auto_falls_back_to_the_cpu_and_cuda_fails_early():
    if torch.cuda.is_available():  # pragma: no cover - a GPU machine
        pytest.skip("this machine has CUDA; the fallback is what CI checks")
    assert _device.resolve("auto") == "cpu" and _device.resolve(None) == "cpu"
    X = datasets.make("circle", n=300, d=10, sigma=0.1, seed=0).X
    a = pipeline.run(X, k=30, localize=False, device="auto")
    b = pipeline.run(X, k=30, localize=False)
    np.testing.assert_array_equal(a.D, b.D)
    with pytest.raises(InputError, match="CUDA is not available"):
        pipeline.run(X, k=30, device="cuda")
    with pytest.raises(InputError, match="must be 'cpu'"):
        pipeline.Params(device="tpu").validate(300)
