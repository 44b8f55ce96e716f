"""Benchmarks of the ticketing platform (see benchmarks/README.md)."""
