"""Rules of kind data_quality (rule_kind = data_quality), one module per rule."""
