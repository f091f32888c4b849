# A sample of more than pipeline.ENSEMBLE_MIN_N points: as `topoembed run` analyses it, an
# ensemble of subsamples (topoembed.ensemble), here one job per subsample and one job that
# combines them over all points (the same result as `topoembed run --early-stop 0`).
ENSEMBLE = names_regex("ensemble")
ALL_OPTS = flags(set(PARAMS) - {"n_subsamples", "early_stop"})


def n_runs(wc):
    return P.n_runs(SAMPLES[wc.sample]["n"])


rule subsample:
    input:
        S + "/prepared.h5ad",
    output:
        S + "/runs/{b}.run",
    wildcard_constraints:
        sample=ENSEMBLE,
        b="[0-9]+",
    params:
        opts=lambda wc: f"{ALL_OPTS} --n-subsamples {n_runs(wc)}",
    log:
        OUT + "/logs/{sample}/subsample_{b}.log",
    threads: 1
    resources:
        **resources("subsample"),
    shell:
        "topoembed subsample {input} --use-rep " + PREPARED_REP + " --index {wildcards.b} {params.opts} "
        "--out {output} 2> {log}"


rule combine:
    input:
        points=S + "/prepared.h5ad",
        runs=lambda wc: expand(OUT + "/{sample}/runs/{b}.run", sample=wc.sample, b=range(n_runs(wc))),
    output:
        REPORT,
    wildcard_constraints:
        sample=ENSEMBLE,
    params:
        opts=lambda wc: f"{ALL_OPTS} --n-subsamples {n_runs(wc)}"
        + (f" --embed {EMBED} {EPOCHS}" if EMBED else ""),
        out=S + "/report",
    log:
        OUT + "/logs/{sample}/combine.log",
    threads: 1
    resources:
        mem_mb=lambda wc: pipeline.stage_resources("combine", SAMPLES[wc.sample]["n"], P)["mem_mb"]
        + (pipeline.stage_resources("embed", SAMPLES[wc.sample]["n"], P)["mem_mb"] if EMBED else 0),
        runtime=lambda wc: pipeline.stage_resources("combine", SAMPLES[wc.sample]["n"], P)["runtime"]
        + (pipeline.stage_resources("embed", SAMPLES[wc.sample]["n"], P)["runtime"] if EMBED else 0),
    shell:
        "topoembed run {input.points} --use-rep " + PREPARED_REP + " --from-runs {input.runs} {params.opts} "
        "--out {params.out} -q > {log} 2>&1"
