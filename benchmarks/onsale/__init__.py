"""The end-to-end on-sale benchmark (issue 11): `python -m benchmarks.onsale --help`."""
