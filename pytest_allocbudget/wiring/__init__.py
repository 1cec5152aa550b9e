"""The pytest wiring: options and settings, the marker and the fixture, the per-run session, the hooks, and the
processes pytest runs tests in (xdist workers, isolated tests).  The only layer that imports pytest."""
