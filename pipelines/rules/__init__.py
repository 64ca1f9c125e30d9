"""The warning rules of RULES.md as code.

- `parameters/*.yaml`  every number, dated and cited (loaded by `params`)
- `catalog`            what a rule is; the rules of each family
- `ineligibility/`, `need/`, `data_quality/`   one module per rule (D01, N02, ...)
- `engine`             builds the quarter's inputs and runs a family
- `assets`             the Dagster assets, one per family
"""
