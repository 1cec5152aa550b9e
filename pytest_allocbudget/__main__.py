"""``python -m pytest_allocbudget``: the ``allocbudget`` command, for where the script is not on PATH (a virtual
environment that is not activated, ``pipx run``-less CI images, Windows without the Scripts directory on PATH)."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
