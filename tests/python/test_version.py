"""`fp4llm --version` names the commit the binary was built from, as git itself reports it (the
bench JSON takes the same stamp), so that a result can be traced to its source."""
import pathlib
import re
import subprocess

from helpers import run

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_version_names_the_commit_git_reports():
    out = run("--version").stdout.strip()
    m = re.fullmatch(r"fp4llm \d+\.\d+\.\d+ \(commit (\S+)\)", out)
    assert m, f"unexpected --version output: {out!r}"
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if git.returncode != 0:  # a tree without its history
        assert m.group(1) == "unknown"
        return
    assert m.group(1).removesuffix("+dirty") == git.stdout.strip()
