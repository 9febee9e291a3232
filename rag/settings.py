"""Settings: every default in one place, each overridable by a RAG_* environment variable."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .errors import RagError

DEFAULT_MODEL = "intfloat/multilingual-e5-small"
INDEX_TYPES = ("auto", "flat", "hnsw")
MIN_KEY_CHARACTERS = 16  # RAG_API_KEY
# In an index folder, what each build writes: its own folder, named from this prefix, and (FAISS)
# the file naming the live one. How `rag` tells an index folder from another folder named index.
GENERATION_PREFIX = "gen-"
CURRENT = "CURRENT"


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rag"


def holds_index(folder: Path) -> bool:
    """Whether ``folder`` holds what a build writes (rag/store/generations.py): the pointer to
    the live build (FAISS) or a build (any vector store). A lock or a staged folder alone, left by
    a first build that failed, is no index."""
    return (folder / CURRENT).is_file() or any(p.is_dir() for p in folder.glob(GENERATION_PREFIX + "*"))


def find_index_dir(start: Path) -> Path | None:
    """``index/`` in ``start`` or in its nearest parent folder that has one, as git finds .git."""
    return next((f / "index" for f in (start, *start.parents) if holds_index(f / "index")), None)


def _index_and_seeds() -> tuple[Path, Path]:
    """RAG_INDEX_DIR and RAG_SEEDS_DIR where set. Else the index found from the current folder
    up, and the seeds beside it: `rag` works from any folder of a project. Where none is found,
    ./index (where `rag index` and `rag serve` build one) and ./seeds."""
    env = os.environ.get
    if env("RAG_INDEX_DIR"):
        index_dir, project = Path(env("RAG_INDEX_DIR")).absolute(), Path.cwd()
    else:
        index_dir = find_index_dir(Path.cwd()) or Path.cwd() / "index"
        project = index_dir.parent
    return index_dir, Path(env("RAG_SEEDS_DIR") or project / "seeds")


def _names(name: str) -> tuple[str, ...]:
    """A comma-separated setting, each name trimmed; empty: none."""
    return tuple(part.strip() for part in (os.environ.get(name) or "").split(",") if part.strip())


def _whole_number(name: str, default: int, minimum: int = 1) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise RagError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise RagError(f"{name} must be at least {minimum}, not {value}")
    return value


def _api_key(raw: str | None) -> str | None:
    """RAG_API_KEY as clients can send it: printable ASCII without surrounding spaces, and long
    enough not to be guessed (wrong keys are throttled, but per client address only)."""
    if not raw:
        return None
    if raw != raw.strip() or not raw.isascii() or not raw.isprintable():
        raise RagError(
            "RAG_API_KEY must be printable ASCII without spaces around it (no client could send another one to match)"
        )
    if len(raw) < MIN_KEY_CHARACTERS:
        raise RagError(
            f"RAG_API_KEY must be at least {MIN_KEY_CHARACTERS} characters, not {len(raw)}; make one with "
            'python -c "import secrets; print(secrets.token_urlsafe(32))"'
        )
    return raw


def _llm_url(raw: str | None) -> str | None:
    """RAG_LLM_URL: the base URL of an OpenAI-compatible server, or None (answers stay extractive).
    Not echoed in the error: it may hold credentials."""
    if not raw:
        return None
    try:
        parts = urlsplit(raw)
        host = parts.hostname
    except ValueError:  # a bracketed IPv6 address left open, say
        host = None
    if not host or parts.scheme not in ("http", "https") or raw != raw.strip():
        raise RagError("RAG_LLM_URL must be an http:// or https:// URL with a host, such as http://127.0.0.1:11434/v1")
    return raw


def _llm_api_key(raw: str | None) -> str | None:
    """RAG_LLM_API_KEY as it goes in an HTTP header; never echoed."""
    if not raw:
        return None
    if raw != raw.strip() or not raw.isascii() or not raw.isprintable():
        raise RagError("RAG_LLM_API_KEY must be printable ASCII without spaces around it")
    return raw


def _number(name: str, default: float, valid: Callable[[float], bool], expected: str) -> float:
    """A number from the environment, or ``default`` when unset; one that is not ``valid`` is
    refused in one line saying what is ``expected``."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not valid(value):
        raise RagError(f"{name} must be {expected}, not {raw!r}")
    return value


def _seconds(name: str, default: float) -> float:
    return _number(name, default, lambda v: math.isfinite(v) and v > 0, "a positive number of seconds")


def _share(name: str, default: float) -> float:
    """A proportion strictly between 0 and 1, such as a target precision."""
    return _number(name, default, lambda v: 0 < v < 1, "a number between 0 and 1 (such as 0.9)")


def choose(name: str, value: str, choices: Collection[str]) -> str:
    """``value`` if it is one of ``choices`` (a registry's names, say), else a one-line error
    naming the setting and what it may be."""
    if value not in choices:
        raise RagError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


@dataclass(frozen=True)
class Settings:
    embedding_model: str = DEFAULT_MODEL
    # Each of these names an implementation in a registry, checked when the engine starts:
    backend: str = "onnx"  # the embedder: "onnx" (int8, fast, exported once) or "torch" (sentence-transformers)
    vector_store: str = "faiss"  # the vector index
    answerer: str = "extractive"  # how the answer is written from the cited sentences
    index_type: str = "auto"  # FAISS index: "flat" (exact), "hnsw", or "auto" (HNSW for large corpora)
    index_dir: Path = Path("index")
    seeds_dir: Path = Path("seeds")
    cache_dir: Path = field(default_factory=_default_cache_dir)
    batch_size: int = 32
    max_running: int = 2  # answers computed at once (the machine has 2 cores)
    max_waiting: int = 64  # answers queued behind them; more get 503 at once
    queue_seconds: int = 10  # longest wait in that queue before 503
    api_key: str | None = field(default=None, repr=False)  # when set, /api/* needs it
    max_upload_mb: int = 20  # largest file POST /api/documents takes
    allowed_hosts: tuple[str, ...] = ()  # Host headers served (empty: any); "*.example.org" allowed
    max_connections: int = 256  # open connections and tasks before new requests get 503
    head_seconds: int = 10  # time a client has to send a request's line and headers
    max_connections_per_client: int = 64  # open connections from one address (0: no cap); beyond, 503
    write_seconds: int = 10  # time a client may take nothing of a response waiting for it before it is cut off
    # Proxies whose X-Forwarded-For names the client (addresses or networks); none by default, so
    # that no local process can claim another client's address to dodge the per-address limits.
    trusted_proxies: tuple[str, ...] = ()
    # An index's token vectors up to this size (as float32) are held in memory, which makes an
    # answer about 2.8 ms faster (benchmarks/token_reads.py); larger ones are read from disk a sentence at a time.
    token_memory_mb: int = 256
    # RAG_VECTOR_STORE=milvus: a server's URI or a file ending in .db (None: milvus.db in the
    # index folder), its credentials, and the alias naming the live collection.
    milvus_uri: str | None = None
    milvus_token: str = field(default="", repr=False)
    milvus_collection: str = "rag"
    # Generated answers: an OpenAI-compatible server's base URL (None: answers stay extractive),
    # the model it serves, its key (sent as a Bearer header, never shown) and the longest wait
    # for its answer before the extractive one is given.
    llm_url: str | None = None
    llm_model: str = ""
    llm_api_key: str | None = field(default=None, repr=False)
    llm_timeout: float = 30.0
    llm_max_running: int = 4  # requests to the LLM server at once; more wait, within llm_timeout
    # The precision aimed at for confident answers: below the probability calibrated for it, the
    # closest passage is shown instead (rag/retrieve/confidence.py).
    confident_precision: float = 0.75

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ.get
        index_dir, seeds_dir = _index_and_seeds()
        return cls(
            embedding_model=env("RAG_EMBEDDING_MODEL") or DEFAULT_MODEL,
            backend=env("RAG_BACKEND") or "onnx",
            vector_store=env("RAG_VECTOR_STORE") or "faiss",
            answerer=env("RAG_ANSWERER") or "extractive",
            index_type=env("RAG_INDEX_TYPE") or "auto",
            index_dir=index_dir,
            seeds_dir=seeds_dir,
            cache_dir=Path(env("RAG_CACHE_DIR")) if env("RAG_CACHE_DIR") else _default_cache_dir(),
            batch_size=_whole_number("RAG_BATCH_SIZE", 32),
            max_running=_whole_number("RAG_MAX_RUNNING", 2),
            max_waiting=_whole_number("RAG_MAX_WAITING", 64),
            queue_seconds=_whole_number("RAG_QUEUE_SECONDS", 10),
            api_key=_api_key(env("RAG_API_KEY")),
            max_upload_mb=_whole_number("RAG_MAX_UPLOAD_MB", 20),
            allowed_hosts=_names("RAG_ALLOWED_HOSTS"),
            max_connections=_whole_number("RAG_MAX_CONNECTIONS", 256),
            head_seconds=_whole_number("RAG_HEAD_SECONDS", 10),
            max_connections_per_client=_whole_number("RAG_MAX_CONNECTIONS_PER_CLIENT", 64, minimum=0),
            write_seconds=_whole_number("RAG_WRITE_SECONDS", 10),
            trusted_proxies=_names("RAG_TRUSTED_PROXIES"),
            token_memory_mb=_whole_number("RAG_TOKEN_MEMORY_MB", 256, minimum=0),
            milvus_uri=env("RAG_MILVUS_URI") or None,
            milvus_token=env("RAG_MILVUS_TOKEN") or "",
            milvus_collection=env("RAG_MILVUS_COLLECTION") or "rag",
            llm_url=_llm_url(env("RAG_LLM_URL")),
            llm_model=env("RAG_LLM_MODEL") or "",
            llm_api_key=_llm_api_key(env("RAG_LLM_API_KEY")),
            llm_timeout=_seconds("RAG_LLM_TIMEOUT", 30.0),
            llm_max_running=_whole_number("RAG_LLM_MAX_RUNNING", 4),
            confident_precision=_share("RAG_CONFIDENT_PRECISION", 0.75),
        )
