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
