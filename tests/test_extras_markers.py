"""Tests that need an extra (ray, psycopg) skip without it, and fail in CI instead.

Each case runs pytest in a new process where ``import ray`` and ``import psycopg`` fail, as on a
machine installed without ``promptmill[ray,postgres]``.
"""

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NEEDS_AN_EXTRA = [
    "tests/store/test_db.py::test_unreachable_database_is_a_clear_error",
    "tests/store/test_db.py::test_runs_results_and_cache_roundtrip[postgres]",
    "tests/distributed/test_ray_executor.py::test_unreachable_cluster_fails_fast_with_a_clear_error",
    "tests/distributed/test_ray_executor.py::test_results_on_the_cluster_equal_a_local_run",
]
NEEDS_NOTHING = "tests/store/test_db.py::test_runs_results_and_cache_roundtrip[sqlite]"
WITHOUT_EXTRAS = ("import sys, pytest; sys.modules.update(ray=None, psycopg=None); "
                  "sys.exit(pytest.main(sys.argv[1:]))")


def _outcomes(report: Path) -> dict[str, str]:
    found = {}
    for case in ET.parse(report).iter("testcase"):
        kinds = {child.tag for child in case}
        failed = kinds & {"failure", "error"}  # pytest.fail in setup is an "error"
        found[case.get("name")] = ("failed" if failed else "skipped" if "skipped" in kinds
                                   else "passed")
    return found


@pytest.mark.parametrize(("in_ci", "expected"), [("0", "skipped"), ("1", "failed")],
                         ids=["locally-skipped", "in-ci-failed"])
def test_tests_needing_an_extra_skip_locally_and_fail_in_ci(in_ci, expected, tmp_path):
    report = tmp_path / "report.xml"
    env = {**os.environ, "PROMPTMILL_REQUIRE_SERVICES": in_ci}
    done = subprocess.run([sys.executable, "-c", WITHOUT_EXTRAS, "-q", "-rsfE", "-p",
                           "no:cacheprovider", f"--junitxml={report}", *NEEDS_AN_EXTRA,
                           NEEDS_NOTHING],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    outcomes = _outcomes(report)
    assert len(outcomes) == len(NEEDS_AN_EXTRA) + 1, done.stdout + done.stderr
    assert outcomes.pop(NEEDS_NOTHING.rpartition("::")[2]) == "passed"
    assert set(outcomes.values()) == {expected}, outcomes
    assert "pip install 'promptmill[ray]'" in done.stdout  # each names the extra to add
    assert "pip install 'promptmill[postgres]'" in done.stdout
