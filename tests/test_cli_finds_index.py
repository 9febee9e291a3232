"""Without RAG_INDEX_DIR, `rag` finds the index as git finds .git: `index/` in the current folder
or its nearest parent that holds one; where there is none, the commands that read it say so in
one line naming `rag index`, and `rag index` builds one here. `rag remove` says what it removed.
In process, on the fake embedder. No model."""

import os
import shutil
import subprocess
import sys

import pytest

from rag.settings import find_index_dir

from .conftest import SEEDS, free_port, rag


@pytest.fixture
def project(tmp_path, monkeypatch, fake_backend):
    """A project folder holding seeds/ (the bundled article) and a sub-folder, with no RAG_INDEX_DIR
    or RAG_SEEDS_DIR set: the folders are found, not given."""
    project = tmp_path / "project"
    shutil.copytree(SEEDS, project / "seeds")
    (project / "notes" / "drafts").mkdir(parents=True)
    monkeypatch.delenv("RAG_INDEX_DIR", raising=False)
    monkeypatch.delenv("RAG_SEEDS_DIR", raising=False)
    monkeypatch.chdir(project)
    assert find_index_dir(project) is None, "an index above the test's folders would be found (and rebuilt)"
    return project


def test_rag_ask_in_a_sub_folder_finds_the_projects_index(project, monkeypatch, capsys):
    code, out, err = rag(capsys, "index", "-q")
    assert code == 0, err
    assert f" into {project / 'index' / 'gen-000001-'}" in out
    monkeypatch.chdir(project / "notes" / "drafts")
    code, out, err = rag(capsys, "ask", "Qui a rencontré Vladimir Poutine ?")
    assert (code, err) == (0, "")
    assert "000_8cb13a5d0c7818f1, sentence" in out
    code, out, _ = rag(capsys, "documents")
    assert code == 0 and out.startswith("000_8cb13a5d0c7818f1\t")
    assert not (project / "notes" / "drafts" / "index").exists()


def test_rag_index_in_a_sub_folder_rebuilds_the_projects_index_from_its_seeds(project, monkeypatch, capsys):
    assert rag(capsys, "index", "-q")[0] == 0
    monkeypatch.chdir(project / "notes")
    code, out, err = rag(capsys, "index", "-q")
    assert code == 0, err
    assert out.startswith("Indexed 1 document, 26 sentences") and f" into {project / 'index' / 'gen-000002-'}" in out
    assert not (project / "notes" / "index").exists()


def test_a_folder_named_index_without_a_build_in_it_is_passed_over(project, monkeypatch, capsys):
    """A sub-folder that happens to be called index (or one where a first build failed, leaving
    its lock) is not the index: the project's is found above it."""
    assert rag(capsys, "index", "-q")[0] == 0
    (project / "notes" / "index").mkdir()
    (project / "notes" / "index" / "chapter.txt").write_text("Not an index.")
    (project / "notes" / "index" / ".build.lock").touch()
    monkeypatch.chdir(project / "notes")
    code, out, _ = rag(capsys, "documents")
    assert code == 0 and out.startswith("000_8cb13a5d0c7818f1\t")


@pytest.mark.parametrize(
    "argv",
    [["ask", "Qui ?"], ["chat"], ["documents"], ["remove", "x"], ["add", "x.txt"]],
    ids=["ask", "chat", "documents", "remove", "add"],
)
def test_with_no_index_anywhere_a_command_that_reads_it_says_where_it_looked(project, monkeypatch, capsys, argv):
    here = project / "notes" / "drafts"
    monkeypatch.chdir(here)
    code, out, err = rag(capsys, *argv)
    assert (code, out) == (1, "")
    assert err == f"rag: error: no index in {here / 'index'} or any parent folder's index/; `rag index` builds one\n"
    assert not (here / "index").exists() and not (project / "index").exists(), "nothing created"


def test_with_no_index_anywhere_rag_index_builds_one_here(project, capsys):
    code, out, err = rag(capsys, "index", "-q")
    assert code == 0, err
    assert f" into {project / 'index' / 'gen-000001-'}" in out and (project / "index" / "CURRENT").is_file()


def test_rag_index_dir_is_used_as_given(project, tmp_path, monkeypatch, capsys):
    """RAG_INDEX_DIR names the index: no search, and its own message where there is none."""
    assert rag(capsys, "index", "-q")[0] == 0
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "elsewhere"))
    code, _, err = rag(capsys, "documents")
    assert code == 1 and str(tmp_path / "elsewhere") in err and "`rag index`" in err


def test_rag_remove_says_what_it_removed_and_what_is_left(project, capsys):
    assert rag(capsys, "index", "-q")[0] == 0
    (project / "more").mkdir()
    (project / "more" / "cats.txt").write_text("Cats sleep a lot. They purr when happy.", encoding="utf-8")
    (project / "more" / "dogs.md").write_text("# Dogs at work\n\nDogs herd sheep. They guard houses.", encoding="utf-8")
    assert rag(capsys, "add", "-q", "more")[0] == 0
    code, out, err = rag(capsys, "remove", "cats", "dogs")
    assert (code, err) == (0, "")
    assert out == (
        "Removed cats (Cats sleep a lot. They purr when happy.), dogs (Dogs at work); "
        "the index now holds 1 document, 26 sentences\n"
    )
    code, out, _ = rag(capsys, "documents")
    assert out.count("\n") == 1


def test_rag_index_without_seeds_or_paths_says_how_to_name_the_documents(tmp_path, monkeypatch, capsys, fake_backend):
    monkeypatch.delenv("RAG_INDEX_DIR", raising=False)
    monkeypatch.delenv("RAG_SEEDS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    code, out, err = rag(capsys, "index", "-q")
    assert (code, out) == (1, "")
    assert err == (
        f"rag: error: no documents to index: {tmp_path / 'seeds'} does not exist; "
        "name them (`rag index PATH ...`) or set RAG_SEEDS_DIR to their folder\n"
    )
    assert not (tmp_path / "index" / "CURRENT").exists()


def test_rag_serve_without_seeds_or_index_stops_with_that_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("RAG_INDEX_DIR", "RAG_SEEDS_DIR")}
    result = subprocess.run(
        [sys.executable, "-m", "rag", "serve", "--port", str(free_port())],
        cwd=tmp_path,
        env={**env, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    said = [line for line in result.stderr.splitlines() if "no documents to index" in line]
    assert said == [
        f"rag: error: no documents to index: {tmp_path / 'seeds'} does not exist; "
        "name them (`rag index PATH ...`) or set RAG_SEEDS_DIR to their folder"
    ]
