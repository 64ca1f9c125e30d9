"""Record linkage: which roster member each extract record is about.

`thresholds` names the match probabilities a link needs before a rule may use it (stricter
for warnings that could stop a benefit). The deterministic pass is SQL
(`warehouse/intermediate/link_exact_id.sql`); `assets` runs the stage for a quarter.
Splink's part: `blocking` (which pairs it compares), `model` (how it scores them).
"""
