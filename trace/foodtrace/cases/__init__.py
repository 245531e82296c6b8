"""Failed samples and their cases: recall scope, case states, recall actions, referrals."""
