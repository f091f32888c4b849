# Every sample's summary.json in one table (CSV and Markdown) and one plot.
rule collect:
    input:
        expand(OUT + "/{sample}/report/summary.json", sample=list(SAMPLES)),
    output:
        f"{OUT}/samples.csv",
        f"{OUT}/samples.md",
        f"{OUT}/samples.png",
    params:
        pairs=" ".join(f"{shlex.quote(n)}={OUT}/{n}/report/summary.json" for n in SAMPLES),
    log:
        OUT + "/logs/collect.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "topoembed collect {params.pairs} --out {OUT} > {log} 2>&1"
