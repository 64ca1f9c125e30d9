"""Rules of kind need (rule_kind = need), one module per rule."""
