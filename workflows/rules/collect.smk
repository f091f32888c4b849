# Every sample's summary.json in one table (CSV and Markdown) and one plot.
rule collect:
    input:
        expand(OUT + "/{sample}/report/summary.json", sample=list(SAMPLES)),
    output:
        f"{OUT}/samples.csv",
        f"{OUT}/samples.md",
        f"{OUT}/samples.png",
    params:
        pairs=" ".join(f"{shlex.quote(n)}={OUT}/{n}/report/summary.json" for n in SAMPLES)
              + ("" if not SKIPPED else " --skipped " + " ".join(shlex.quote(f"{n}={why}") for n, why in SKIPPED.items())),
    log:
        OUT + "/logs/collect.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "topoembed collect {params.pairs} --out {OUT} > {log} 2>&1"


# A failed sample (with --keep-going, after every other sample has finished) still leaves the
# table: the samples that finished, and each failed one with the last line of its log.
onerror:
    import subprocess

    summaries = [f"{n}={OUT}/{n}/report/summary.json" for n in SAMPLES]
    skipped = ["--skipped", *(f"{n}={why}" for n, why in SKIPPED.items())] if SKIPPED else []
    done = subprocess.run(["topoembed", "collect", *summaries, "--out", OUT, "--logs", f"{OUT}/logs", *skipped],
                          capture_output=True, text=True)
    print(f"topoembed workflow: a sample failed; {OUT}/samples.md lists every sample and why it failed"
          if done.returncode == 0 else f"topoembed workflow: the table could not be written: {done.stderr}",
          file=sys.stderr)
