"""auto.select / auto.choose: the label-free rule on hand-made summaries, and on data."""
import numpy as np
import pytest

from topoembed import auto, datasets
from topoembed._validate import InputError

# the published grid (k = 15, 100) scaled to n = 300 points: k = 15, 50
SMALL_GRID = (("effective_resistance", 15, None, None), ("effective_resistance", 50, None, None),
              ("diffusion", 15, 8, None), ("diffusion", 50, 8, None))


def cand(distance, k, life, t=None, thresh=1.0):
    return {"distance": distance, "k": k, "t": t, "life1": list(life), "thresh": thresh}


ONE = [1.0, 0.1, 0.05]        # one clear loop: s_1 = 0.9
TWO = [1.0, 0.9, 0.1]         # two clear loops
NONE = list(np.linspace(0.1, 0.01, 10))  # a gentle slope: no gap stands out


def test_agreement_between_two_families_accepts_the_loop():
    c = {"a": cand("effective_resistance", 15, ONE), "b": cand("diffusion", 15, ONE, t=8),
         "c": cand("diffusion", 100, NONE, t=8)}
    out = auto.choose(c)
    assert out["n_loops"] == 1 and out["support"] == 2
    assert out["key"] in ("a", "b")


def test_a_single_family_is_not_enough_even_with_two_settings():
    # two diffusion settings are one family: no independent evidence
    c = {"a": cand("diffusion", 15, ONE, t=8), "b": cand("diffusion", 100, ONE, t=64),
         "c": cand("effective_resistance", 15, NONE), "d": cand("effective_resistance", 100, NONE)}
    out = auto.choose(c)
    assert out["n_loops"] == 0
    assert auto.choose(c, min_support=1)["n_loops"] == 1
    # counted per graph, the two diffusion settings are two families
    assert auto.choose(c, family="graph")["n_loops"] == 1
    same_graph = {**c, "b": cand("diffusion", 15, ONE, t=64)}
    assert auto.choose(same_graph, family="graph")["n_loops"] == 0


def test_most_supported_number_wins_and_most_confident_setting_is_chosen():
    c = {"er15": cand("effective_resistance", 15, TWO), "er100": cand("effective_resistance", 100, [1.0, 0.95, 0.2]),
         "d15": cand("diffusion", 15, TWO, t=8), "d100": cand("diffusion", 100, ONE, t=8),
         "d100b": cand("diffusion", 100, [1.0, 0.3], t=64)}
    out = auto.choose(c, family="graph")
    assert out["n_loops"] == 2 and out["support"] == 3
    assert auto.choose(c)["n_loops"] == 2 and auto.choose(c)["support"] == 2
    # s_2 = (0.9 - 0.1)/0.9 = 0.889 (er15, d15) beats (0.95 - 0.2)/0.95 = 0.789 (er100)
    assert out["key"] in ("er15", "d15")
    assert out["score"] == pytest.approx(0.8 / 0.9)
    assert {r["key"]: r["n_loops"] for r in out["candidates"]}["d100"] == 1


def test_choose_needs_candidates():
    with pytest.raises(InputError):
        auto.choose({})


def test_lifetimes_diagram_reproduces_scores():
    from topoembed import loops

    rng = np.random.default_rng(0)
    b = rng.uniform(0.1, 1, 40)
    dgm = np.c_[b, b * rng.uniform(1.0, 3.0, 40)]
    life, _ = loops.filtered_lifetimes(dgm)
    assert loops.detection_scores(auto.lifetimes_diagram(life)) == loops.detection_scores(dgm)


def test_select_finds_one_loop_on_a_noisy_circle_and_none_on_a_blob():
    X = datasets.make("circle", n=300, d=20, sigma=0.1, seed=0).X
    out = auto.select(X, grid=SMALL_GRID)
    assert out["n_loops"] == 1
    assert out["distance"] in ("effective_resistance", "diffusion") and out["k"] in (15, 50)
    assert out["score"] > 0.5
    assert len(out["candidates"]) == len(SMALL_GRID)
    assert all(r["time_s"] >= 0 for r in out["candidates"])
    blob = datasets.make("blob", n=300, d=20, sigma=0.1, seed=0).X
    assert auto.select(blob, grid=SMALL_GRID)["n_loops"] == 0


def test_select_is_deterministic_and_label_free():
    X = datasets.make("linked_circles", n=200, d=20, sigma=0.1, seed=1).X
    grid = SMALL_GRID[::2]
    a = auto.select(X, grid=grid, seed=3, min_support=1)
    b = auto.select(X, grid=grid, seed=3, min_support=1)
    assert a == {**b, "candidates": a["candidates"]} and [r["scores"] for r in a["candidates"]] == \
        [r["scores"] for r in b["candidates"]]
    # the rows' order carries no label information: a permutation gives the same choice
    perm = np.random.default_rng(0).permutation(len(X))
    c = auto.select(X[perm], grid=grid, seed=3, min_support=1)
    assert (c["n_loops"], c["key"]) == (a["n_loops"], a["key"])


def test_select_drops_k_too_large_and_refuses_when_nothing_is_left():
    X = datasets.make("circle", n=50, d=5, sigma=0.0, seed=0).X
    out = auto.select(X, grid=(("effective_resistance", 10, None, None), ("diffusion", 100, 8, None)), min_support=1)
    assert [r["key"] for r in out["candidates"]] == ["er_k10"]
    with pytest.raises(InputError, match="k"):
        auto.select(X, grid=(("diffusion", 100, 8, None),))


def test_config_key():
    assert auto.config_key(("diffusion", 15, 8, None)) == "diff_k15_t8"
    assert auto.config_key(("euclidean", None, None, None)) == "euclidean"
    assert auto.config_key(("laplacian_eigenmaps", 15, None, 2)) == "le_k15_p2"
    assert auto.config_key(("effective_resistance", 100, None, None, "and")) == "er_k100_mutual"
    assert auto.normalize(("diffusion", 15, 8, None)) == ("diffusion", 15, 8, None, "or")


def test_same_distance_on_a_mutual_graph_is_another_family():
    c = {"a": cand("effective_resistance", 100, ONE), "b": {**cand("effective_resistance", 100, ONE), "symmetrize": "and"},
         "c": cand("diffusion", 15, NONE, t=8)}
    assert auto.choose(c, family="graph")["n_loops"] == 1 and auto.choose(c, family="graph")["support"] == 2
    assert auto.choose(c)["n_loops"] == 0  # by distance kind: one family


def test_without_an_accepted_loop_the_package_default_is_reported():
    from topoembed import pipeline

    p = pipeline.Params()
    assert auto.FALLBACK == (p.distance, p.k, None, None, p.symmetrize)
    assert auto.FALLBACK in auto.DEFAULT_GRID
    c = {"er_k100_mutual": {**cand("effective_resistance", 100, NONE), "symmetrize": "and"},
         "d": cand("diffusion", 15, NONE, t=8), "e": cand("effective_resistance", 15, NONE)}
    out = auto.choose(c)
    assert out["n_loops"] == 0 and out["key"] == "er_k100_mutual" and out["symmetrize"] == "and"
    assert out["unconfirmed"] is None
    assert out["score"] == pytest.approx(1 - max(out["candidates"][0]["scores"].values()))


def test_an_unconfirmed_reading_is_reported_but_not_counted():
    # only diffusion sees a loop (two settings, one family): verdict 0 loops, but the
    # strongest single reading is the setting reported, flagged as unconfirmed
    weak = [1.0, 0.5, 0.45]  # s_1 = 0.5
    c = {"er_k100_mutual": {**cand("effective_resistance", 100, NONE), "symmetrize": "and"},
         "d8": cand("diffusion", 15, weak, t=8), "d64": cand("diffusion", 15, ONE, t=64),
         "e": cand("effective_resistance", 15, NONE)}
    out = auto.choose(c)
    assert out["n_loops"] == 0 and out["key"] == "d64" and out["t"] == 64
    assert out["unconfirmed"] == {"key": "d64", "n_loops": 1, "score": pytest.approx(0.9), "support": 1}
    d64 = next(r for r in out["candidates"] if r["key"] == "d64")
    assert out["score"] == pytest.approx(1 - max(d64["scores"].values()))  # its no-loop score
    assert out["support"] == 2  # the two effective-resistance settings that say "no loop"


def test_ties_in_support_go_to_the_more_confident_number_not_the_more_numerous():
    # on one k: m = 1 (s_1 = 0.9) from one ER and one diffusion setting; m = 2 (s_2 ≈ 0.79)
    # from two of each: equal support (2 kinds); the sum would pick m = 2, the mean picks m = 1
    two = [1.0, 0.95, 0.2]
    c = {"er15": cand("effective_resistance", 15, ONE), "d15": cand("diffusion", 15, ONE, t=8),
         "er15m": {**cand("effective_resistance", 15, two), "symmetrize": "and"},
         "er15b": cand("effective_resistance", 15, two, thresh=2.0),
         "d15b": cand("diffusion", 15, two, t=64), "d15c": cand("diffusion", 15, two, t=32)}
    out = auto.choose(c)
    assert out["n_loops"] == 1 and out["support"] == 2 and out["key"] in ("er15", "d15")
    assert out["score"] == pytest.approx(0.9)


def test_ties_in_support_go_to_the_number_seen_at_the_smallest_k():
    # the eyeglasses: the dense graphs short-cut the bridge and read two clear loops (s_2 high),
    # the sparse ones read one loop less clearly; equal support, the sparse graphs' count wins
    one_weak = [1.0, 0.35, 0.3]  # s_1 = 0.65
    c = {"er15": cand("effective_resistance", 15, one_weak), "d15": cand("diffusion", 15, one_weak, t=8),
         "er100": cand("effective_resistance", 100, TWO), "d100": cand("diffusion", 100, TWO, t=8)}
    out = auto.choose(c)
    assert out["n_loops"] == 1 and out["key"] in ("er15", "d15")
    assert auto.choose({k: v for k, v in c.items() if k.endswith("100")})["n_loops"] == 2


def test_a_closed_surface_raises_the_count_only_where_it_is_read():
    # a torus: every setting reads one loop; the default setting's second feature is half the first
    torus = [1.0, 0.5, 0.05]
    c = {"er15": cand("effective_resistance", 15, ONE), "d15": cand("diffusion", 15, ONE, t=8),
         auto.config_key(auto.FALLBACK): {**cand("effective_resistance", 100, torus), "symmetrize": "and"}}
    assert auto.choose(c)["n_loops"] == 1
    void = {"void": True, "void_p": 1e-3, "void_lifetime": 0.1, "n_loops": 2}
    calls = []

    def reading():
        calls.append(1)
        return void

    out = auto.choose_with_surface(c, reading)
    assert out["n_loops"] == 2 and out["key"] == auto.config_key(auto.FALLBACK) and out["surface"] == void
    assert out["score"] == pytest.approx(0.9) and calls == [1]
    # a circle's default diagram cannot hide a second loop: the surface is never computed
    circle = {**c, auto.config_key(auto.FALLBACK): {**cand("effective_resistance", 100, ONE), "symmetrize": "and"}}
    assert auto.choose_with_surface(circle, reading)["n_loops"] == 1 and calls == [1]
    # no void, or a void without two loops (a sphere): nothing changes
    assert auto.choose_with_surface(c, {**void, "void": False})["n_loops"] == 1
    assert auto.choose_with_surface(c, {**void, "n_loops": 0})["n_loops"] == 1
