"""``nnlab bench --cnn`` runs in quick mode, prints every part of its profile, and rewrites only its own section."""

import json

from nnlab.bench import write_section
from nnlab.bench_cnn import MARK
from nnlab.cli import main


def test_bench_cnn_quick_prints_every_part_and_writes_its_section(capsys, tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nthe MLP tables\n")
    assert main(["bench", "--cnn", "--quick", "--json", str(tmp_path / "b.json"), "--markdown", str(doc)]) == 0
    out = capsys.readouterr().out
    for word in ("nnlab fit", "PyTorch", "im2col", "GEMM", "col2im", "max-pooling", "conv bookkeeping",
                 "everything else", "nnlab fit / PyTorch", "One training run", "CNN 16-32", "MLP"):
        assert word in out, word
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\nthe MLP tables\n") and text.count(MARK) == 2
    results = json.loads((tmp_path / "b.json").read_text())
    profile = results["step_profile_us"]
    assert abs(sum(v for k, v in profile.items() if k != "step") - profile["step"]) < 1e-6 * profile["step"] + 1
    assert all(t["seconds"] > 0 for t in results["training_seconds"])


def test_write_section_replaces_its_own_part_only(tmp_path):
    doc = tmp_path / "b.md"
    doc.write_text("head\n\n<!-- a -->\nold\n<!-- a -->\n\ntail\n")
    write_section(doc, "<!-- a -->", "<!-- a -->\nnew\n<!-- a -->\n")
    assert doc.read_text() == "head\n\n<!-- a -->\nnew\n<!-- a -->\n\ntail\n"
    write_section(doc, "<!-- b -->", "<!-- b -->\nmore\n<!-- b -->\n")
    assert doc.read_text().endswith("tail\n\n<!-- b -->\nmore\n<!-- b -->\n")
