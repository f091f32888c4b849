# A whole dataset as one job per subsample, then one job that combines them (issue 13).
# Every job calls the command line; the subsamples themselves are drawn by topoembed
# (topoembed.ensemble.plan), the same ones `topoembed run` would analyse on one machine.
#
#   snakemake -s workflows/ensemble.smk --cores 4 --config input=cells.h5ad use_rep=X_scVI out=results/cells
#   snakemake -s workflows/ensemble.smk --executor slurm --jobs 10 --config input=cells.h5ad use_rep=X_scVI
#   snakemake -s workflows/ensemble.smk -n --config input=...          # dry run: the jobs it would run
#
# Config keys: input (.h5ad / .npy / .csv), use_rep (an obsm key, required for .h5ad),
# out (folder; default results/ensemble), n_subsamples (default: the package's, 10),
# options (a mapping of pipeline options, e.g. {k: 100, seed: 1}; names as on the command line).
import shlex

from topoembed import pipeline

INPUT = str(config["input"])
OUT = str(config.get("out", "results/ensemble")).rstrip("/")
B = int(config.get("n_subsamples") or pipeline.ENSEMBLE_RUNS)
OPTIONS = dict(config.get("options") or {})
for bad in ("n_subsamples", "subsample", "early_stop"):
    if bad in OPTIONS:
        raise ValueError(f"options: {bad!r} is set by this workflow (n_subsamples: config key; all runs are made)")
ARGS = " ".join(f"--{k.replace('_', '-')} {shlex.quote(str(v))}" for k, v in OPTIONS.items())
ARGS += f" --n-subsamples {B}"
if config.get("use_rep"):
    ARGS += f" --use-rep {shlex.quote(str(config['use_rep']))}"


rule all:
    input:
        f"{OUT}/result/summary.json",


rule subsample:
    input:
        INPUT,
    output:
        OUT + "/runs/{b}.run",
    wildcard_constraints:
        b="[0-9]+",
    threads: 1
    resources:
        mem_mb=4000,  # one 1,000-point run: under 1 GB measured (BENCHMARKS.md, whole datasets)
        runtime=30,
    params:
        args=ARGS,  # a changed option reruns the subsamples (and the combine job after them)
    log:
        OUT + "/logs/subsample_{b}.log",
    shell:
        "topoembed subsample {input} --index {wildcards.b} {params.args} --out {output} 2> {log}"


rule combine:
    input:
        data=INPUT,
        runs=expand(OUT + "/runs/{b}.run", b=range(B)),
    output:
        f"{OUT}/result/summary.json",
    threads: 2  # the part search's analyses (topoembed.parts) run on these
    resources:
        mem_mb=8000,  # the extension graph (of 50,000 landmarks above that many points) and sparse solves: O(n k); 1.5 GiB at 10^6 x 50
        runtime=60,
    params:
        args=ARGS,
    log:
        OUT + "/logs/combine.log",
    shell:
        "topoembed run {input.data} --from-runs {input.runs} {params.args} --jobs {threads} --out {OUT}/result -q "
        "2> {log}"
