"""The warning rules of RULES.md as code.

- `catalog`            what a rule is: one module holds its clause, SQL, the tables it reads,
                       its actions and its Chinese sentence; the rules of each family
- `ineligibility/`, `need/`, `data_quality/`   one module per rule (D01, N02, ...)
- `texts`              the Chinese words the rules' sentences share
- `engine`             builds the inputs the family's rules declare and runs a family
- `records`            the records a warning rests on, and the identity caveat
- `assets`             the Dagster assets, one per family
The numbers the rules use, dated and cited, are in pipelines/policy/parameters/*.yaml.
"""
