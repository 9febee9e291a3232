"""The package as shipped: the import contract (layers, no cycles), a wheel that holds everything
the product reads at run time, and that wheel installed and serving outside the checkout."""

import re
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from .conftest import REPO, SEEDS, call, free_port, model_cache_dir

BIN = Path(sys.executable).parent
PACKAGE_DATA = [
    "rag/web/templates/page.html",
    "rag/web/templates/_document.html",
    "rag/web/templates/signin.html",
    "rag/web/static/chat.js",
    "rag/web/static/page.css",
    "rag/web/static/favicon.svg",
    "rag/data/background.fr.txt",
    "rag/data/chitchat-head.json",
]


def lint_imports(package_parent: Path) -> subprocess.CompletedProcess:
    """import-linter with the contracts of pyproject.toml, on the `rag` package found in ``package_parent``."""
    return subprocess.run(
        [str(BIN / "lint-imports"), "--no-cache", str(REPO / "pyproject.toml")],
        cwd=package_parent,
        env={"PATH": str(BIN), "PYTHONPATH": str(package_parent)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_import_contract_holds():
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Contracts: 2 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("ingest/segment.py", "from .. import cli", "edges over the engine over the core"),
        ("store/tokens.py", "from . import index", "no import cycles"),
        ("embed/onnx_embedder.py", "from . import onnx_export", "no import cycles"),
    ],
    ids=["upward", "cycle", "cycle-through-a-function"],
)
def test_the_import_contract_catches_an_upward_import_and_a_cycle(tmp_path, module, line, broken):
    shutil.copytree(REPO / "rag", tmp_path / "rag", ignore=shutil.ignore_patterns("__pycache__"))
    path = tmp_path / "rag" / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n\ndef _late():\n    {line}\n", encoding="utf-8")
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout[-3000:]
    assert re.search(rf"^{broken}.* BROKEN$", result.stdout, re.MULTILINE), result.stdout[-3000:]


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """The wheel `pip install .` would install, built from a copy of the project's files."""
    source = tmp_path_factory.mktemp("source")
    for folder in ("rag", "web"):  # web/: the page, shipped as rag/web
        shutil.copytree(REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = out.glob("rag_news-*.whl")
    return wheel


def test_the_wheel_holds_every_module_template_static_and_data_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {str(p.relative_to(REPO)) for p in (REPO / "rag").rglob("*.py")}
    assert modules - names == set(), "every module of rag/ is in the wheel"
    assert set(PACKAGE_DATA) - names == set()
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "seeds/", "eval/"))]
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "rag = rag.cli:run" in entry_points


@pytest.mark.model
def test_the_installed_wheel_indexes_and_serves_outside_the_checkout(wheel, tmp_path):
    """A fresh virtual environment with only the wheel installed as `rag` (its dependencies are
    this environment's, by a path file), run from a folder that is not the checkout."""
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    site = subprocess.check_output(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
    ).strip()
    # A plain path entry: the checkout's editable install (a .pth finder there) is not run.
    (Path(site) / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "-q", str(wheel)], capture_output=True, text=True
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {
        "PATH": str(environment / "bin"),
        "HOME": str(tmp_path),
        "HF_HUB_OFFLINE": "1",
        "RAG_SEEDS_DIR": str(SEEDS),
        "RAG_INDEX_DIR": str(elsewhere / "index"),
        "RAG_CACHE_DIR": str(model_cache_dir()),
    }
    where = subprocess.check_output([str(python), "-c", "import rag; print(rag.__file__)"], cwd=elsewhere, env=env)
    assert where.decode().startswith(site), "the wheel's rag, not the checkout's"

    rag = str(environment / "bin" / "rag")
    indexed = subprocess.run([rag, "index", "-q"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600)
    assert indexed.returncode == 0 and indexed.stdout.startswith("Indexed 1 document, 26 sentences"), indexed.stderr
    port = free_port()
    server = subprocess.Popen(
        [rag, "serve", "--port", str(port)], cwd=elsewhere, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if call(base, "/readyz", timeout=5)[0] == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None, server.stderr.read().decode()[-3000:]
            subprocess.run(["sleep", "0.2"], check=True)
        status, _, page = call(base, "/")
        assert status == 200 and "/static/chat.js" in page
        for asset in ("/static/page.css", "/static/chat.js", "/static/favicon.svg"):
            assert call(base, asset)[0] == 200, asset
        listed = call(base, "/page/documents")[2]["documents"]
        status, _, shown = call(base, f"/page/documents/{listed[0]['id']}")  # the _document.html template
        assert status == 200 and f'data-document="{listed[0]["id"]}"' in shown
        status, _, answer = call(base, "/api/ask", {"question": "What did Putin demand?"})
        assert status == 200 and "formellement exclue" in answer["citations"][0]["text"]
    finally:
        server.terminate()
        server.wait(timeout=30)
