import numpy as np
import pytest

from topoembed import datasets


@pytest.mark.parametrize("name", sorted(datasets.SHAPES))
def test_shapes_shape_seed_and_noise(name):
    a = datasets.make(name, n=200, d=20, sigma=0.1, seed=3)
    b = datasets.make(name, n=200, d=20, sigma=0.1, seed=3)
    c = datasets.make(name, n=200, d=20, sigma=0.1, seed=4)
    assert a.X.shape == (200, 20)
    np.testing.assert_array_equal(a.X, b.X)
    assert not np.allclose(a.X, c.X)
    noise = a.X - a.clean
    assert noise.std() == pytest.approx(0.1, rel=0.1)


def test_circle_is_equally_spaced_unit_circle_isometrically_embedded():
    ds = datasets.make("circle", n=360, d=50, seed=0)
    r = np.linalg.norm(ds.clean, axis=1)
    np.testing.assert_allclose(r, 1.0, atol=1e-12)  # orthonormal basis keeps the radius
    steps = np.linalg.norm(np.diff(ds.clean, axis=0), axis=1)
    np.testing.assert_allclose(steps, 2 * np.sin(np.pi / 360), rtol=1e-10)
    np.testing.assert_allclose(np.diff(ds.angle), 2 * np.pi / 360)


def test_linked_circles_are_two_unit_circles():
    ds = datasets.make("linked_circles", n=400, d=3, seed=0)
    assert np.bincount(ds.label).tolist() == [200, 200]
    for lab in (0, 1):
        P = ds.clean[ds.label == lab]
        centre = P.mean(0)
        np.testing.assert_allclose(np.linalg.norm(P - centre, axis=1), 1.0, atol=1e-12)


def test_eyeglasses_outline_is_closed_and_equally_spaced():
    ds = datasets.make("eyeglasses", n=500, d=2, seed=0)
    Q = ds.clean
    steps = np.linalg.norm(np.diff(np.r_[Q, Q[:1]], axis=0), axis=1)
    assert steps.max() / steps.min() < 1.2  # chords cut the arc/bridge corners slightly


def test_eyeglasses_have_the_published_geometry():
    # Damrich et al. 2024: unit lenses centred at x = ±1.5, bridges at y = ±0.35.
    P = datasets.make("eyeglasses", n=1000, d=2, seed=0).intrinsic
    on_lens = np.isclose(np.hypot(np.abs(P[:, 0]) - 1.5, P[:, 1]), 1.0, atol=1e-9)
    on_bridge = np.isclose(np.abs(P[:, 1]), 0.35, atol=1e-12) & (np.abs(P[:, 0]) <= 1.5 - np.sqrt(1 - 0.35**2) + 1e-9)
    assert np.all(on_lens | on_bridge)
    assert 0.12 < on_bridge.mean() < 0.2  # about 15 % of the points lie on the bridges, as published


def test_sphere_and_torus_geometry():
    s = datasets.make("sphere", n=500, d=3, seed=0)
    np.testing.assert_allclose(np.linalg.norm(s.clean, axis=1), 1.0, atol=1e-12)
    t = datasets.make("torus", n=500, d=3, seed=0)
    P = t.intrinsic
    # distance from the core circle of radius 2 is the tube radius 1
    np.testing.assert_allclose(np.hypot(np.hypot(P[:, 0], P[:, 1]) - 2, P[:, 2]), 1.0, atol=1e-12)
    # the ring angle θ and the tube angle φ rebuild every point (closed form of the parametrisation)
    th, phi = t.angle, datasets.torus_tube_angle(P)
    assert ((phi >= 0) & (phi < 2 * np.pi)).all()
    np.testing.assert_allclose(np.c_[(2 + np.cos(phi)) * np.cos(th), (2 + np.cos(phi)) * np.sin(th), np.sin(phi)], P,
                               atol=1e-12)
    assert t.betti == {1: 2, 2: 1}
    # area-uniform sampling puts more points on the outer half (R + r cos(phi)): ratio (2+2/pi)/(2-2/pi)
    outer = np.mean(np.hypot(P[:, 0], P[:, 1]) > 2)
    assert outer == pytest.approx((2 + 2 / np.pi) / 4, abs=0.05)
    np.testing.assert_allclose(np.abs(np.linalg.svd(t.clean - t.clean.mean(0), compute_uv=False)),
                               np.abs(np.linalg.svd(P - P.mean(0), compute_uv=False)), rtol=1e-10)


def test_spec_parsing():
    name, kw = datasets.parse_spec("synthetic:circle?n=100&d=5&sigma=0.25&seed=2")
    assert name == "circle" and kw == {"n": 100, "d": 5, "sigma": 0.25, "seed": 2}
    for bad in ["synthetic:square", "synthetic:circle?n=abc", "synthetic:circle?foo=1", "circle"]:
        with pytest.raises(ValueError):
            datasets.parse_spec(bad)


def test_bad_parameters():
    with pytest.raises(ValueError, match="sigma"):
        datasets.make("circle", sigma=-1)
    with pytest.raises(ValueError, match="intrinsic"):
        datasets.make("torus", d=2)
