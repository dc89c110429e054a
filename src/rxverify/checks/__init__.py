"""The suite's own checks: domain rules of the legacy interface, security and FHIR rules.

Each check is a small function with the schemathesis signature (ctx, response, case): it
returns nothing when all is well and raises one `RuleViolation` naming the rule, what was
received and what the contract or mapping declares.
"""
