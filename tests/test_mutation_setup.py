"""`make mutation` (mutmut, configured in pyproject.toml) selects tests by their ids: check what it relies on."""

import subprocess
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]


def _mutmut_config():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]


def test_every_mutated_module_and_selected_test_file_exists():
    config = _mutmut_config()
    missing = [p for p in config["only_mutate"] + config["pytest_add_cli_args_test_selection"]
               if not (ROOT / p).is_file()]
    assert not missing, f"[tool.mutmut] names files that do not exist: {missing}"


def test_every_selected_test_id_can_be_passed_back_to_pytest():
    # mutmut runs the tests that cover a mutant by passing their ids as arguments; an id holding a backslash
    # or a newline (a regex or message as a parameter) is not found again and the whole run stops
    files = _mutmut_config()["pytest_add_cli_args_test_selection"]
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *files],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    ids = [line for line in out.splitlines() if "::" in line]
    assert len(ids) > 500
    bad = [i for i in ids if "\\" in i]
    assert not bad, f"test ids pytest cannot select again: {bad[:5]}"


def test_the_report_headline_says_how_many_mutants_a_test_killed():
    """docs/testing.md's score leaves out the mutants judged equivalent by hand; its headline says how many."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from mutation_report import headline
    finally:
        sys.path.remove(str(ROOT / "tools"))
    total = {"mutants": 110, "killed": 90, "timeout": 4, "not checked": 10, "equivalent": 5}
    assert headline(total) == ("**Killed by a test: 94 of the 100 mutants checked (94.0%).** Of the other 6, 5 were "
                               "judged equivalent by hand (each with its reason below) and 1 no test kills "
                               "(survivors); the score leaves the equivalent ones out.")
