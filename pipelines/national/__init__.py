"""The national step: what only the union of the regions shows (rules D01 and D03 across
regions). See `compare` and docs/scale-out.md."""
