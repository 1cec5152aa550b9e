"""The budget file: reading it (strictly, naming the line of any problem), writing it (deterministic, atomic, under
the writers' lock), merging a run's measurements into it, and finding its stale entries."""
