"""Rules of kind ineligibility (rule_kind = ineligibility), one module per rule."""
