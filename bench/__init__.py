"""Throughput and latency benchmark for a running min-object-storage server.

Run `python -m bench --help`; docs/benchmarks.md explains what is measured.
"""
