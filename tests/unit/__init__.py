"""Unit tests of the pure modules.  A package, so that module names do not clash with tests/integration."""
