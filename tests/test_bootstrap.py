"""script/bootstrap's install says nothing alarming: the pip it puts in .venv resolves the
project's dependencies without a warning (the pip Python 3.11 comes with warned, at every
`script/server`, that lxml has no extra 'html_clean', which jusText asks for). Offline: every
dependency is installed already."""

import re
import shutil
import subprocess
import sys

from .conftest import REPO


def test_the_pip_bootstrap_installs_resolves_the_dependencies_without_a_warning(tmp_path):
    pinned = re.search(r'"pip==([0-9.]+)"', (REPO / "script" / "bootstrap").read_text()).group(1)
    version = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith(f"pip {pinned} "), "script/bootstrap installs it into .venv"
    project = tmp_path / "project"  # a copy: building the metadata writes beside the sources
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, project / name)
    for folder in ("rag", "web"):
        shutil.copytree(REPO / folder, project / folder, ignore=shutil.ignore_patterns("__pycache__"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--no-index",
            "--no-build-isolation",
            "--quiet",
            "--disable-pip-version-check",
            ".",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "WARNING" not in result.stdout + result.stderr, result.stderr[-2000:]
