# A sample of up to pipeline.ENSEMBLE_MIN_N points, one rule per stage. Each stage file
# records the settings it was made with; the next stage reads them, refuses a file made
# with other settings, and `params:` makes Snakemake rerun a stage (and only what depends
# on it) when one of its own settings changes. `topoembed report` gives what `topoembed
# run` gives on the same points (tests/test_cli.py).
STAGED = names_regex("staged")
ST = pipeline.STAGE_PARAMS
USE = f"--use-rep {PREPARED_REP}"


rule graph:
    input:
        S + "/prepared.h5ad",
    output:
        S + "/graph.npz",
    wildcard_constraints:
        sample=STAGED,
    params:
        opts=flags({*ST["graph"], "device"}),
    log:
        OUT + "/logs/{sample}/graph.log",
    threads: 1
    resources:
        **resources("graph"),
    shell:
        "topoembed graph {input} {USE} {params.opts} --out {output} 2> {log}"


rule distances:
    input:
        points=S + "/prepared.h5ad",
        graph=S + "/graph.npz",
    output:
        S + "/distances.npz",
    wildcard_constraints:
        sample=STAGED,
    params:
        opts=flags({"distance", "t", "n_components", "max_points", "device"}),
    log:
        OUT + "/logs/{sample}/distances.log",
    threads: 1
    resources:
        **resources("distances"),
    shell:
        "topoembed distances {input.points} {USE} --graph {input.graph} {params.opts} --out {output} 2> {log}"


rule homology:
    input:
        S + "/distances.npz",
    output:
        S + "/diagrams.npz",
    wildcard_constraints:
        sample=STAGED,
    params:
        opts=flags({"maxdim"}),
    log:
        OUT + "/logs/{sample}/homology.log",
    threads: 1
    resources:
        **resources("homology"),
    shell:
        "topoembed homology {input} {params.opts} --out {output} 2> {log}"


rule detect:
    input:
        diagrams=S + "/diagrams.npz",
        graph=S + "/graph.npz",
        distances=S + "/distances.npz",
    output:
        S + "/detection.json",
    wildcard_constraints:
        sample=STAGED,
    params:
        opts=flags({"n_loops", "loop_rule", "confirm", "surface", "device"}),
    log:
        OUT + "/logs/{sample}/detect.log",
    threads: 1
    resources:
        **resources("detect"),
    shell:
        "topoembed detect {input.diagrams} --graph {input.graph} --distances {input.distances} {params.opts} "
        "--out {output} 2> {log}"


STAGE_FILES = dict(points=S + "/prepared.h5ad", graph=S + "/graph.npz", distances=S + "/distances.npz",
                   diagrams=S + "/diagrams.npz", detection=S + "/detection.json")
FILE_OPTS = ("--graph {input.graph} --distances {input.distances} --diagrams {input.diagrams} "
             "--detection {input.detection}")


rule localize:
    input:
        **STAGE_FILES,
    output:
        S + "/loops.npz",
    wildcard_constraints:
        sample=STAGED,
    params:
        opts=flags({"localize", "theta_filtration", "phase_method", "phase_low_confidence", "prevalence_check"}),
    log:
        OUT + "/logs/{sample}/localize.log",
    threads: 2  # a prevalence check (a loop with p >= 0.01) runs its 10 subsamples on them
    resources:
        **resources("localize"),
    shell:
        "topoembed localize {input.points} {USE} " + FILE_OPTS + " {params.opts} --jobs {threads} --out {output} 2> {log}"


rule embed:
    input:
        points=S + "/prepared.h5ad",
        distances=S + "/distances.npz" if EMBED and EMBED.startswith("sketchmap") else [],
    output:
        S + "/embedding.npy",
    wildcard_constraints:
        sample=STAGED,
    params:
        opts=f"--loss {EMBED} {EPOCHS} --seed {P.seed}"
        + (" --distances {input.distances}" if EMBED and EMBED.startswith("sketchmap") else ""),
    log:
        OUT + "/logs/{sample}/embed.log",
    threads: 1
    resources:
        **resources("embed"),
    shell:
        "topoembed embed {input.points} {USE} {params.opts} --out {output} 2> {log}"


rule report:
    input:
        **STAGE_FILES,
        loops=S + "/loops.npz",
        embedding=S + "/embedding.npy" if EMBED else [],
    output:
        REPORT,
    wildcard_constraints:
        sample=STAGED,
    params:
        opts=flags(set(PARAMS)),
        embed=(f"--embedding {S}/embedding.npy --loss {EMBED}" if EMBED else ""),
        out=S + "/report",
    log:
        OUT + "/logs/{sample}/report.log",
    threads: 1
    resources:
        **resources("report"),
    shell:
        "topoembed report {input.points} {USE} " + FILE_OPTS + " --loops {input.loops} {params.embed} "
        "{params.opts} --out {params.out} > {log} 2>&1"
