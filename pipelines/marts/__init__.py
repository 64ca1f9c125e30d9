"""Publishing a quarter: marts.warnings, household_cases, quarterly_comparison and
warnings_masked, built from the rule findings and swapped in in one transaction."""
