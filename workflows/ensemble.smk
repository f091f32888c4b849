# A whole dataset as one job per subsample and one job per part of the part search (a loop that few
# cells carry; topoembed.parts), then one job that combines them (issues 13, 29). Every job calls
# the command line; the subsamples are drawn by topoembed (topoembed.ensemble.plan) and the parts
# planned by one job (`topoembed parts`, a checkpoint: how many parts is known once it ran), the
# same ones `topoembed run` would analyse on one machine. The combine job makes the full analysis
# of a part whose screen found a new loop (rare; on its threads) and the extension to all points.
#
#   snakemake -s workflows/ensemble.smk --cores 4 --config input=cells.h5ad use_rep=X_scVI out=results/cells
#   snakemake -s workflows/ensemble.smk --executor slurm --jobs 10 --config input=cells.h5ad use_rep=X_scVI
#   snakemake -s workflows/ensemble.smk -n --config input=...          # dry run: the jobs it would run
#
# Config keys: input (AnnData: .h5ad / .zarr / .loom; or .npy / .csv), use_rep (an obsm key, required for AnnData),
# out (folder; default results/ensemble), n_subsamples (default: the package's, 10),
# options (a mapping of pipeline options, e.g. {k: 100, seed: 1}; names as on the command line).
import shlex

from topoembed import io, pipeline

if "input" not in config:
    raise ValueError("config: no input; pass --config input=cells.h5ad use_rep=X_scVI (or an input: key in --configfile)")
INPUT = str(config["input"])
if io.is_anndata_input(INPUT) and not config.get("use_rep"):
    raise ValueError(f"config: {INPUT} is AnnData: set use_rep (e.g. --config use_rep=X_scVI or X_pca), the "
                     "representation every job analyses (raw counts, such as Cell Ranger's .h5: the main "
                     "workflow, workflows/Snakefile, prepares them with recipe: cell_cycle)")
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
        mem_mb=4000,  # one 700-point run: under 1 GB measured (BENCHMARKS.md, whole datasets)
        runtime=30,
    params:
        args=ARGS,  # a changed option reruns the subsamples (and the combine job after them)
    log:
        OUT + "/logs/subsample_{b}.log",
    shell:
        "topoembed subsample {input} --index {wildcards.b} {params.args} --out {output} 2> {log}"


checkpoint parts:
    input:
        INPUT,
    output:
        OUT + "/parts/plan.npz",
    threads: 1
    resources:
        mem_mb=8000,  # the extension graph, as the combine job's
        runtime=30,
    params:
        args=ARGS,
    log:
        OUT + "/logs/parts.log",
    shell:
        "topoembed parts {input} {params.args} --out {output} -q 2> {log}"


rule part:
    input:
        data=INPUT,
        plan=OUT + "/parts/plan.npz",
    output:
        OUT + "/parts/{i}.run",
    wildcard_constraints:
        i="[0-9]+",
    threads: 1
    resources:
        mem_mb=4000,  # one screen: a single run of at most subsample_size points, as a subsample's
        runtime=30,
    params:
        args=ARGS,
    log:
        OUT + "/logs/part_{i}.log",
    shell:
        "topoembed subsample {input.data} --part {wildcards.i} --plan {input.plan} {params.args} --out {output} "
        "2> {log}"


def part_screens(wildcards):
    """One screen per part the plan lists (none where the part search is off or finds no part apart)."""
    from topoembed import stage_files

    plan = checkpoints.parts.get().output[0]
    _, record = stage_files.read_stage(plan, "part plan", "topoembed parts")
    return expand(OUT + "/parts/{i}.run", i=range(int(record["n_searched"])))


rule combine:
    input:
        data=INPUT,
        runs=expand(OUT + "/runs/{b}.run", b=range(B)),
        screens=part_screens,
    output:
        f"{OUT}/result/summary.json",
    threads: 2  # the full analyses of parts whose screens found a new loop (topoembed.parts) run on these
    resources:
        mem_mb=8000,  # the extension graph (of 50,000 landmarks above that many points) and sparse solves: O(n k); 1.5 GiB at 10^6 x 50
        runtime=60,
    params:
        args=ARGS,
    log:
        OUT + "/logs/combine.log",
    shell:
        "topoembed run {input.data} --from-runs {input.runs} {input.screens} {params.args} --jobs {threads} "
        "--out {OUT}/result -q "
        "2> {log}"
