from __future__ import annotations

import pytest


def test_record_then_check(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        import pytest

        @pytest.mark.alloc_budget
        def test_list():
            assert len(list(range(1000))) == 1000
        """
    )
    result = tester.runpytest("--alloc-update")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*wrote allocbudget.yaml: 1 created, 0 updated, 0 unchanged*"])
    assert "test_record_then_check.py::test_list" in (tester.path / "allocbudget.yaml").read_text()
    result = tester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*1 measured (*): 1 passed, 0 failed, 0 missing*"])
