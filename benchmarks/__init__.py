"""Ratio benchmarks: each measures its own baseline in the same run, on the same machine,
and reports value, baseline and their ratio against a target. Run with ``make bench``."""
