"""Safety: the one guarded egress, identities, the test-patient registry, scrubbing, the ledger."""
