"""Load tests: the guarded Locust client, the open model, latencies in 1 % buckets, SLOs, progress and reports."""
