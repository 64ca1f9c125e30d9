"""Development tooling: not the pipeline.

What a developer of doudi runs, never a bureau's quarter: the synthetic-data generator
(`synth`), the benchmark (`bench`), scoring a run against the generator's truth
(`evaluate`), training the linkage model (`train`), the exact-ID comparison
(`compare_linkage`) and the national-step timing (`measure_national`). The pipeline
(`pipelines`, `sources`, `checks`, `warehouse`) never imports from here; the command line
reaches these tools lazily, for the developer commands only (`doudi synth`, `doudi bench`,
`doudi demo`, `doudi evaluate`, `doudi compare-linkage`).
"""
