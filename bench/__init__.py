"""Stand-alone benchmarks (docs/architecture.md section 10); a package so that one bench can
reuse another's filling and timing (`from bench.review_queue_bench import ...`)."""
