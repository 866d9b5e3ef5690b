"""Speed benchmark: `make bench` (python -m bench.run)."""
