"""Benchmarks that print figures; run through `make bench` targets, never as tests."""
