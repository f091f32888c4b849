# Noise benchmark (issue 6) on a cluster or many cores. No analysis code here: each job
# calls the topoembed command line; the grid comes from benchmarks/noise_benchmark.py's grid().
#
#   snakemake -s workflows/benchmark.smk --cores 32                                  # quick grid
#   snakemake -s workflows/benchmark.smk --cores 32 --config quick=false out=benchmarks/results/full
#   snakemake -s workflows/benchmark.smk --executor slurm --jobs 200 --config quick=false   # a cluster
import os

from topoembed.cli import benchmark_harness

B = benchmark_harness()  # benchmarks/noise_benchmark.py of this checkout

configfile: os.path.join(workflow.basedir, "benchmark.yaml")

OUT = str(config["out"]).rstrip("/")
N = int(config.get("n", 1000))
D = int(config.get("d", 50))
H1_ONLY = "--h1-only" if config.get("h1_only", False) else ""
TASKS = B.grid(
    quick=bool(config.get("quick", True)),
    datasets_=list(config.get("datasets") or []) or None,
    seeds=config.get("seeds"),
    sigma_step=config.get("sigma_step"),
)
TASK_FILES = [f"{OUT}/tasks/{B.task_filename(*t)}" for t in TASKS]


rule all:
    input:
        f"{OUT}/auc.csv",
        f"{OUT}/auc.md",
        f"{OUT}/scores.png",


rule task:
    output:
        OUT + "/tasks/{dataset}_s{sigma}_seed{seed}.json",
    wildcard_constraints:
        dataset="[a-z_]+",
        sigma="[0-9]+\.[0-9]+",
        seed="[0-9]+",
    threads: 1
    resources:
        # H2 tasks (the sphere at n = 1,000) need far more memory and time than H1 ones
        mem_mb=lambda wc: B.task_resources(wc.dataset, N, bool(H1_ONLY))["mem_mb"],
        runtime=lambda wc: B.task_resources(wc.dataset, N, bool(H1_ONLY))["runtime"],
    log:
        OUT + "/logs/{dataset}_s{sigma}_seed{seed}.log",
    shell:
        "topoembed benchmark --task {wildcards.dataset} {wildcards.sigma} {wildcards.seed}"
        " --n {N} --d {D} {H1_ONLY} --out {output} 2> {log}"


rule aggregate:
    input:
        TASK_FILES,
    output:
        f"{OUT}/auc.csv",
        f"{OUT}/auc.md",
        f"{OUT}/runs.csv",
        f"{OUT}/scores.png",
    shell:
        "topoembed benchmark --out {OUT} --aggregate {input} > /dev/null"
