"""Policy as data: every number a stage uses, dated and cited (`params`, `parameters/*.yaml`),
and the windows of history derived from them (`window`).

Below both the linker and the rules: each reads the values in force for its quarter from
here, so neither imports the other for a date.
"""
