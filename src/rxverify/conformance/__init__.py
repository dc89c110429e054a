"""The contract suite as QA sees it: which tests apply to which platform, dying platforms, the per-area table."""
