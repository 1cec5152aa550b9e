"""What the plugin costs a run that budgets nothing: it imports only what it needs to read its options.

Measured in a fresh interpreter (a subprocess), since the outer session has imported everything already.
"""

from __future__ import annotations

import pytest

#: Reads every module the run imported, at its very end, into modules.txt.
RECORD_MODULES = """
import sys


def pytest_unconfigure(config):
    with open("modules.txt", "w") as stream:
        stream.write("\\n".join(sorted(sys.modules)))
"""

#: What reading the options, the ini keys and the markers needs; nothing that measures, judges, stores or reports
#: (the freezer's module, which imports only gc, holds the run's freezing state from the start; the hash seed's
#: decides, before anything runs, whether pytest starts again).
LIGHT = {
    "pytest_allocbudget",
    "pytest_allocbudget.judging",
    "pytest_allocbudget.measuring",
    "pytest_allocbudget.wiring",
    "pytest_allocbudget.wiring.ci",
    "pytest_allocbudget.measuring.freezing",
    "pytest_allocbudget.measuring.hashseed",
    "pytest_allocbudget.judging.metrics",
    "pytest_allocbudget.wiring.options",
    "pytest_allocbudget.wiring.plugin",
    "pytest_allocbudget.wiring.settings",
    "pytest_allocbudget.judging.tolerance",
    "pytest_allocbudget.judging.units",
}


def _imported(tester: pytest.Pytester) -> set[str]:
    return set((tester.path / "modules.txt").read_text().split())


@pytest.mark.smoke
def test_a_run_with_no_budgeted_test_imports_only_the_light_modules(tester: pytest.Pytester) -> None:
    tester.makeconftest(RECORD_MODULES)
    tester.makepyfile("def test_plain():\n    assert [1] * 3 == [1, 1, 1]\n")
    result = tester.runpytest_subprocess("--alloc-tolerance", "5%, 1 KiB")
    result.assert_outcomes(passed=1)
    imported = _imported(tester)
    ours = {name for name in imported if name.startswith("pytest_allocbudget")}
    assert ours == LIGHT
    assert "yaml" not in imported
    assert "tracemalloc" not in imported


def test_a_budgeted_test_still_reads_the_budget_file_and_measures(tester: pytest.Pytester) -> None:
    tester.makeconftest(RECORD_MODULES)
    tester.makepyfile(
        """
        import pytest

        @pytest.mark.alloc_budget
        def test_budgeted():
            assert len([0] * 100) == 100
        """
    )
    tester.runpytest_subprocess("--alloc-update").assert_outcomes(passed=1)
    result = tester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*1 measured (*): 1 passed, 0 failed, 0 missing*"])
    imported = _imported(tester)
    assert {
        "pytest_allocbudget.wiring.session",
        "pytest_allocbudget.budgets.store",
        "pytest_allocbudget.measuring.measure",
    } <= imported
    assert "pytest_allocbudget.budgets.yamlread" not in imported  # the file is in the plugin's own layout: no PyYAML
