"""Data checks on each staged source, surfaced as Dagster asset checks.

- `ingest`   what is checked on a source's delivery (SQL over the warehouse)
- `factory`  builds, for every staged asset, one blocking check (the delivery can be
             used: not empty, keys unique, mostly readable, every row accounted for) and
             one warning check (how much cleaning the values needed)
"""
