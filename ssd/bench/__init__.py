"""`ssd bench`: benchmarks that print numbers and write docs/benchmarks.md."""
