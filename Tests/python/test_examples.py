"""Examples/ (issue 14), each run from its one command against `shoal serve`, on small data."""
import ast
import os
import subprocess
import sys

import pytest

from test_serve import start, stop

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def address(tmp_path_factory):
    proc, log, address = start(str(tmp_path_factory.mktemp("examples")))
    try:
        yield address
    finally:
        stop(proc, log)


def run(script, *args):
    out = subprocess.run([sys.executable, os.path.join(ROOT, "Examples", script), *args], capture_output=True, text=True,
                         timeout=600, env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, "Clients", "python")))
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_face_search_prints_the_table(address):
    out = run("face_search.py", "--address", address, "--gallery", "2000", "--queries", "30")
    rows = [line.split() for line in out.splitlines() if line.strip()[:2] in ("1 ", "5 ", "10")]
    shoal_rows = [r for r in rows if r[1] == "shoal"]
    assert [r[0] for r in shoal_rows] == ["1", "5", "10"], out
    assert all(float(r[3]) >= 0.9 for r in shoal_rows), out  # recall against NumPy's exact neighbours
    assert sum(r[1] == "numpy" for r in rows) == 3, out


def test_classify_parts_reports_leave_one_out_accuracy(address):
    out = run("classify_parts.py", "--address", address, "--per-class", "30")
    accuracies = [float(line.split(": ")[1].split()[0]) for line in out.splitlines() if line.startswith("leave-one-out accuracy")]
    assert len(accuracies) == 2 and all(0.5 < a <= 1.0 for a in accuracies), out
    assert "predicted" in out and "precision" in out


def test_anomalies_flags_the_planted_outliers(address):
    out = run("anomalies.py", "--address", address, "--normal", "2000")
    for line in out.splitlines():
        if line.strip().startswith("flagged above p99"):
            flagged = set(ast.literal_eval(line.split("items ")[1].split(";")[0]))
            planted = set(ast.literal_eval(line.split("planted outliers: ")[1]))
            assert planted <= flagged, line
    assert out.count("flagged above p99") == 2, out


def test_text_search_finds_package_descriptions_by_meaning(address):
    out = run("text_search.py", "--address", address, "--limit", "120", "--query", "package management", "--k", "5")
    assert "self-check (a paraphrase is nearer than an unrelated sentence): passed" in out, out
    lines = out.split("'package management':")[1].strip().splitlines()
    assert len(lines) == 5 and all(float(line.split()[0]) < 1.0 for line in lines), out
