"""Builds the optional allocation counter extension; everything else is in pyproject.toml.

The extension is optional: where it cannot be compiled (no C compiler, an unsupported interpreter), the package
installs without it and measures with tracemalloc alone.
"""

from __future__ import annotations

import platform

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """Lets the install go on without the extension if it cannot be built, and says so."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as error:
            self._warn(error)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as error:
            self._warn(error)

    def _warn(self, error: Exception) -> None:
        print(
            f"WARNING: pytest-allocbudget's allocation counter was not built ({error}); "
            "the plugin will measure with tracemalloc only."
        )


ext_modules = []
if platform.python_implementation() == "CPython":
    ext_modules.append(
        Extension(
            "pytest_allocbudget.measuring._counter",
            sources=["pytest_allocbudget/measuring/_counter.c"],
            extra_compile_args=["-std=c11"] if platform.system() != "Windows" else [],
            optional=True,
        )
    )

setup(ext_modules=ext_modules, cmdclass={"build_ext": OptionalBuildExt})
