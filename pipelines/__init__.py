"""doudi's Dagster code location and command line.

Stages, one folder each: `ingest` (sources to staging), `link` (linked.matches), `rules`
(warning rules), `marts` (publication), `exports` (lists and report). `synth` makes the
synthetic province; `definitions` is what Dagster loads; `cli` is the `doudi` command.
"""
