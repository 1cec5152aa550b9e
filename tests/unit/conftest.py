"""Shared fixtures of the unit tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

GENERATOR = Path(__file__).resolve().parents[2] / "docs" / "examples" / "generate.py"


@pytest.fixture(scope="session")
def generate() -> ModuleType:
    """docs/examples/generate.py, imported as a module: what makes the documentation's generated blocks."""
    spec = importlib.util.spec_from_file_location("generate_doc_examples", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    write_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no __pycache__ under docs/
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = write_bytecode
    return module
