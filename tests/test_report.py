"""The HTML report: what it says, which plots it has, and that a real browser renders it.

The browser tests load each report in headless Debian ``chromium`` (skipped when it is not
installed) with a small checker script added to a copy of the page: every <img> must be a
decoded data: image of nonzero size, and no error may reach the console.
"""
import json
import re
import shutil
import subprocess
import time

import numpy as np
import pytest

from topoembed import datasets, pipeline, plotting, report

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
                None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="headless chromium not installed "
                                    "(Debian: apt-get install chromium); the browser check of report.html is skipped")


def _report_inputs(result, name):
    summ = pipeline.summary(result, input_desc=name)
    per_point = [{f: lp[f] for f in pipeline.PER_POINT if f in lp} for lp in result.loops]
    return summ, dict(points=None, index=result.index, per_point=per_point)


def _synthetic(name, **spec):
    X = datasets.make(name, n=1000, d=50, seed=0, **spec).X
    summ, kw = _report_inputs(pipeline.run(X), f"synthetic:{name}")
    kw["points"] = X[kw["index"]]
    return summ, kw


@pytest.fixture(scope="module")
def circle():
    return _synthetic("circle", sigma=0.25)


@pytest.fixture(scope="module")
def blob():
    # Gaussian noise on which effective resistance alone sees a loop and diffusion does not
    return _synthetic("blob", sigma=0.15)


def _alts(page):
    return re.findall(r'<img[^>]*alt="([^"]*)"', page)


# ------------------------------------------------------------------ the plots themselves
def _dgms():
    rng = np.random.default_rng(0)
    b = rng.uniform(1e-4, 2e-4, 50)
    h1 = np.c_[b, b * rng.uniform(1.01, 1.2, 50)]
    h1 = np.r_[h1, [[1.5e-4, 6e-4]]]  # the loop: row 50, longest by far
    h0 = np.c_[np.zeros(100), np.r_[rng.uniform(1e-4, 0.02, 99), np.inf]]
    return [h0, h1]


def test_barcode_is_sorted_with_the_detected_bar_first_and_highlighted():
    from matplotlib.figure import Figure

    dgms = _dgms()
    ax = Figure().subplots()
    plotting.barcode(ax, dgms, highlight=[50])
    bars = [ln for ln in ax.lines if len(ln.get_xdata()) == 2]
    top = max(bars, key=lambda ln: ln.get_ydata()[0])
    assert np.allclose(top.get_xdata(), dgms[1][50]) and top.get_color() == plotting.loop_color(0)
    assert all(ln.get_color() == plotting.OTHER_BAR for ln in bars if ln is not top)
    lengths = [np.ptp(ln.get_xdata()) for ln in sorted(bars, key=lambda ln: -ln.get_ydata()[0])]
    assert lengths == sorted(lengths, reverse=True)


def test_diagram_axes_come_from_h1_not_h0():
    from matplotlib.figure import Figure

    dgms = _dgms()
    ax = Figure().subplots()
    plotting.diagram(ax, dgms, highlight=[50])
    assert 6e-4 <= ax.get_ylim()[1] < 1e-3  # H1 dies by 6e-4; H0 runs to 0.02
    assert ax.get_xlim()[1] < 1e-3
    assert any("loop 1" == t.get_text() for t in ax.texts)
    full = Figure().subplots()
    plotting.diagram(full, dgms, scale="all")
    assert full.get_ylim()[1] > 0.02


# ------------------------------------------------------------------ what the page says
def test_circle_report_verdict_plots_and_glossary(circle):
    summ, kw = circle
    t = time.perf_counter()
    page = report.render_html(summ, **kw)
    assert time.perf_counter() - t < 6  # about 1 s on an idle core
    verdict = page[page.index("Verdict"):page.index("Persistence and detection")]
    assert "1 loop found" in verdict and "significant" in verdict and "Confirmed: diffusion" in verdict
    alts = _alts(page)
    assert {"persistence diagram", "barcode", "detection scores", "loop 1: phase on PCA of the points",
            "loop 1: membership on PCA of the points", "loop 1: phase histogram"} <= set(alts)
    # on-loop share explained, with its threshold
    assert "472 of 1,000 points (47%)" in page and "even on a pure noisy circle" in page
    # every glossary link has its entry, and every number shown has a term
    linked = set(re.findall(r'href="#g-([a-z_0-9]+)"', page))
    defined = set(re.findall(r'<dt id="g-([a-z_0-9]+)"', page))
    assert linked == defined
    assert {"score", "s_m", "p_value", "on_loop", "threshold", "phase", "phase_confidence", "persistence",
            "birth", "death", "confirmation"} <= defined
    assert "prevalence" not in defined  # a single run has no subsamples
    assert not re.search(r'(src|href)="(https?:)?//', page)  # self-contained


def test_a_checked_small_loop_says_its_phase_spread_and_links_the_term():
    # a small input's phase is the consensus of its prevalence check's runs, as a whole dataset's:
    # the report gives the median spread across them and the glossary entry it links to
    from topoembed import analysis

    X = datasets.make("circle", n=72, d=10, sigma=0.1, seed=0).X
    res = analysis.run(X, jobs=1)
    assert res.loops and res.loops[0].get("n_subsamples") == 10  # the check ran (no p-value at this size)
    summ, kw = _report_inputs(res, "circle of 72 points")
    kw["points"] = X
    page = report.render_html(summ, **kw)
    spread = np.nanmedian(res.loops[0]["phase_spread"])
    assert f"across the runs that found it: {spread:.3f}." in page and 'id="g-phase_spread"' in page

def test_a_single_run_without_a_check_has_no_phase_spread(circle):
    summ, kw = circle
    assert "phase spread" not in report.render_html(summ, **kw)


def test_no_loop_report_has_no_loop_view(blob):
    summ, kw = blob
    page = report.render_html(summ, **kw)
    assert "No loop found" in page and "(1 − max s_m)" in page
    assert "but diffusion on the same graph finds 0, so the verdict is no loop" in page
    # the score's own reading passed both bars (the second distance undid it): no "stands out" sentence
    gap = summ["detection"]["gap"]
    assert gap["s_m"] >= gap["min_score"] and "No loop stands out" not in page
    assert not [a for a in _alts(page) if a.startswith("loop")]
    assert "No loop was found, so there is no phase or loop membership to show" in page


def test_every_lt_sign_is_escaped_and_the_glossary_states_the_verdicts_thresholds(circle, blob):
    from topoembed import verdict

    for summ, kw in (circle, blob):
        page = report.render_html(summ, **kw)
        # outside <script>/<style>, a '<' not starting a tag is text the page forgot to escape
        text = re.sub(r"<(script|style)\b.*?</\1>", "", page, flags=re.S)
        assert not re.findall(r"<(?![a-zA-Z/!])", text)
    assert "a very small" in page and "(&lt; 0.001)" in page  # the blob's rule: evidence
    entry = page[page.index('id="g-p_value"'):]
    entry = entry[:entry.index("</dd>")]
    assert f"Below {verdict.P_CONCLUSIVE:g} it supports the loop on its own" in entry
    assert f"up to {verdict.ALPHA:g} the loop stays a possible loop" in entry
    assert f"{verdict.SUPPORT_PREVALENCE:.0%} of random subsamples" in entry
    assert "called significant" not in entry


def test_warnings_are_shown_and_may_be_absent(blob):
    summ, kw = blob
    warned = {**summ, "warnings": ["the kNN graph has 3 connected components <b>"]}
    page = report.render_html(warned, **kw)
    assert "The run logged 1 warning" in page and "3 connected components &lt;b&gt;" in page
    assert "logged no warnings" in report.render_html({**summ, "warnings": []})
    bare = {k: v for k, v in summ.items() if k != "warnings"}
    assert "warning" not in report.render_html(bare).lower()


def test_view_is_used_and_checked(circle):
    summ, kw = circle
    Y = np.random.default_rng(0).normal(size=(summ["n_input"], 2))
    page = report.render_html(summ, **kw, view=("UMAP", Y))
    assert "loop 1: phase on UMAP" in _alts(page)
    with pytest.raises(ValueError, match="n_input"):
        report.render_html(summ, **kw, view=("UMAP", Y[:10]))


def test_old_calls_still_work(circle):
    summ, kw = circle
    page = report.render_html(summ)  # summary only: no 2-D view, but a sentence
    assert "not drawn" in page and "loop 1: phase" not in page
    assert "Embedding" in report.render_html(summ, kw["points"], kw["index"], kw["per_point"],
                                             [("Embedding", "<p>x</p>")])


# ------------------------------------------------------------------ in a real browser
_CHECKER = """<script>
window.__errors = [];
window.addEventListener("error", e => window.__errors.push(String(e.message || "resource failed")), true);
const __ce = console.error; console.error = (...a) => { window.__errors.push(a.join(" ")); __ce(...a); };
window.addEventListener("load", () => {
  const imgs = [...document.images];
  const bad = imgs.filter(i => !(i.complete && i.naturalWidth > 0 && i.src.startsWith("data:image/")));
  document.body.setAttribute("data-check", JSON.stringify(
    {n: imgs.length, bad: bad.map(i => i.alt), errors: window.__errors}));
});
</script>"""


def _chromium(tmp_path, page, *args):
    profile = tmp_path / f"profile{len(list(tmp_path.iterdir()))}"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args, page.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def browser_check(html_text, tmp_path, name, screenshot=None):
    """Load the page in headless chromium; return (images, bad images, console errors)."""
    page = tmp_path / f"{name}.html"
    page.write_text(html_text.replace("<head>", "<head>" + _CHECKER, 1))
    out = _chromium(tmp_path, page, "--virtual-time-budget=10000", "--dump-dom")
    found = re.search(r'data-check="([^"]*)"', out.stdout)
    assert found, f"the checker did not run: {out.stderr[-2000:]}"
    check = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    console = [ln for ln in out.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    if screenshot:
        page.write_text(html_text)
        _chromium(tmp_path, page, f"--screenshot={screenshot}", "--window-size=1200,3000", "--hide-scrollbars")
    return check["n"], check["bad"], check["errors"] + console


@needs_chromium
def test_reports_render_in_chromium(circle, blob, tmp_path):
    for name, (summ, kw), n_images in [("circle", circle, 7), ("blob", blob, 3)]:
        shot = tmp_path / f"{name}.png"
        n, bad, errors = browser_check(report.render_html(summ, **kw), tmp_path, name, screenshot=shot)
        assert n == n_images and bad == [] and errors == [], (name, n, bad, errors)
        assert shot.stat().st_size > 20_000  # a real page, not a blank one


@needs_chromium
def test_checker_catches_a_broken_image(tmp_path):
    broken = ('<!DOCTYPE html><html><head></head><body><img alt="x" src="data:image/png;base64,AAAA">'
              '<script>console.error("boom"); undefined_function();</script></body></html>')
    n, bad, errors = browser_check(broken, tmp_path, "broken")
    assert n == 1 and bad == ["x"]
    assert any("boom" in e for e in errors) and any("undefined_function" in e for e in errors)


@pytest.mark.slow
@needs_chromium
def test_ipc_report_renders_in_chromium(ipc_path, tmp_path):
    import anndata

    a = anndata.read_h5ad(ipc_path)
    idx = np.sort(np.random.default_rng(0).choice(a.n_obs, 1000, replace=False))
    X = np.asarray(a.obsm["X_scVI"], dtype=float)[idx]
    summ, kw = _report_inputs(pipeline.run(X), "neural_ipc_scvi.h5ad (1,000 cells)")
    page = report.render_html(summ, **kw, view=("UMAP", np.asarray(a.obsm["X_umap"])[idx]))
    assert "1 loop found" in page and "loop 1: phase on UMAP" in _alts(page)
    n, bad, errors = browser_check(page, tmp_path, "ipc", screenshot=tmp_path / "ipc.png")
    assert n == 7 and bad == [] and errors == []


def test_a_void_found_by_the_gap_rule_is_worded_without_a_p_value():
    # a clean surface: H2 has too few features for the null, so the void has no p-value
    surface = {"void": True, "void_p": None, "void_lifetime": 1.0, "n_loops": 2, "n_landmarks": 200}
    s = {"detection": {"n_loops": 2, "surface": surface, "surface_loops": {"n_loops": 2, "void_p": None, "previous": 0}},
         "loops": []}
    note = next(n for n in report.verdict_notes(s) if n.startswith("A closed surface"))
    assert "too few H2 features for the null" in note and "p = " not in note
    with_p = {**s, "detection": {**s["detection"], "surface": {**surface, "void_p": 0.004}}}
    assert "universal-null p = 0.004" in next(n for n in report.verdict_notes(with_p) if n.startswith("A closed"))


def test_the_parts_note_says_how_many_parts_each_resolution_gave():
    from topoembed import report

    one = {"n_parts": 5}
    same = {"n_parts": 7, "n_parts_by_resolution": [7, 7], "resolutions": [1.0, 0.2]}
    differ = {"n_parts": 11, "n_parts_by_resolution": [11, 3], "resolutions": [1.0, 0.2]}
    assert report._parts_by_resolution(one) == "5 parts"
    assert report._parts_by_resolution(same) == "7 parts at each of the resolutions 1 and 0.2"  # not "7 or 7"
    assert report._parts_by_resolution(differ) == "11 parts at resolution 1 and 3 at resolution 0.2"


def test_a_loop_supported_in_a_part_says_where_its_membership_was_measured():
    # the ensemble's loop that a part's analysis supports (topoembed.parts.apply_evidence): its
    # membership is the part's, on the points analysed there; its phase the subsamples' over all
    ev = {"p_value": 0.008, "prevalence": 0.7, "n_runs": 5, "n_subsamples": 7, "p_value_in_part": 0.0027,
          "k_in_part": 100, "part": 1, "part_size": 304, "n_analysed": 520, "n_parts_searched": 3,
          "ensemble_p_value": 0.96, "ensemble_prevalence": 0.6, "ensemble_n_on_loop": 3663}
    lp = {"part_evidence": ev, "n_on_loop": 459, "on_loop_threshold": 1.0}
    note = report._part_evidence_note(0, lp)
    assert "membership is measured there too, on those 520 points only" in note and "3,663" in note
    assert "its phase is still the subsamples' consensus" in note
    text = report._membership_text({"n_input": 4068, "ensemble": {"n_subsamples": 10}}, lp, {}, lambda w: w)
    assert "measured within the part of 304 points and its shell (520 points analysed)" in text
    assert "median over the subsamples" not in text
    # a loop whose membership stayed the subsamples' (a record from before it was measured in the part)
    old = {**lp, "part_evidence": {k: v for k, v in ev.items() if k != "ensemble_n_on_loop"}}
    assert "membership is still the subsamples' consensus" in report._part_evidence_note(0, old)
    assert "median over the subsamples" in report._membership_text({"n_input": 4068, "ensemble": {"n_subsamples": 10}}, old, {},
                                                                      lambda w: w)


def test_the_loop_tables_prevalence_counts_the_runs_behind_it():
    # a prevalence measured within a part (5 of 7 of its subsamples) is not the ensemble's 6 of 10
    ens = {"prevalence": 0.6, "n_runs": 6, "n_subsamples": 10}
    assert report._runs_behind(ens) == "6 of 10"
    part = {**ens, "prevalence": 5 / 7, "part_evidence": {"prevalence": 5 / 7, "n_runs": 5, "n_subsamples": 7}}
    assert report._runs_behind(part) == "5 of 7"
    assert report._runs_behind({"prevalence": 1.0, "n_runs": 10}) == "10"
