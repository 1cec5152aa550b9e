"""Verdict and report: the metrics and their tolerances, judging a measurement against its budget, and the texts
and documents that say what was found (failure text, summary, JSON report, GitHub formats).  Pure functions."""
