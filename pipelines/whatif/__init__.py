"""Policy replay (`doudi whatif`): the rules of published quarters re-run under changed
parameters, compared with what was published, never writing the warehouse (docs/policy.md)."""
