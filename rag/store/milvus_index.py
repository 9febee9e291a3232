"""``RAG_VECTOR_STORE=milvus``: the pooled vectors in Milvus, through pymilvus' ``MilvusClient``.

``RAG_MILVUS_URI`` is a file ending in ``.db`` (embedded milvus-lite, in this process; the
default is ``milvus.db`` in the index folder) or a server's address (``http://host:19530``, a
Milvus standalone or cluster, or ``milvus-lite server``), with ``RAG_MILVUS_TOKEN`` its
credentials. Each generation is a collection, ``<prefix>_gen_<number>_<time>``, its rows the
sentences' rows; the alias ``<prefix>`` (``RAG_MILVUS_COLLECTION``, default ``rag``) names the
live one and is switched in one call, so that every server sharing the Milvus sees the old
index or the new one. The generation's folder keeps what answers also need (the sentences, the
documents, the token vectors) and a small JSON file naming the collection. The only module that
imports pymilvus (lazily).
"""

from __future__ import annotations

import fcntl
import json
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

import numpy as np

from ..errors import IndexInvalidError, RagError
from .manifest import FIX
from .vector_index import HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_FROM, HNSW_NEIGHBOURS

INSERTED_AT_ONCE = 2048  # rows per insert call: well under gRPC's message limit at any dimension
READ_AT_ONCE = 1024  # rows per get call
_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
_SERVER_SCHEMES = ("http://", "https://", "tcp://", "unix:")
_clients: dict[tuple[str, str], object] = {}
_clients_lock = threading.Lock()


def check_milvus_settings(uri: str, prefix: str) -> None:
    """A one-line error for a URI pymilvus would refuse or a prefix Milvus would."""
    if not (uri.startswith(_SERVER_SCHEMES) or uri.endswith(".db")):
        raise RagError(f"RAG_MILVUS_URI must be a server (http://host:19530) or a file ending in .db, not {uri!r}")
    if not _PREFIX.fullmatch(prefix):
        raise RagError(
            f"RAG_MILVUS_COLLECTION must be a letter then letters, digits or underscores (64 at most), not {prefix!r}"
        )


class MilvusStore:
    name = "milvus"
    file = "vectors.milvus.json"

    def __init__(self, uri: str, token: str, prefix: str):
        check_milvus_settings(uri, prefix)
        self.uri, self.prefix = uri, prefix
        self._token = token

    def __repr__(self) -> str:  # never the token
        return f"MilvusStore({self.uri!r}, prefix={self.prefix!r})"

    @cached_property
    def client(self):
        """The process's client for this Milvus, connected on first use (not on every call: searches use it)."""
        return _client(self.uri, self._token)

    def collection(self, generation: str) -> str:
        return f"{self.prefix}_{generation.replace('-', '_')}"

    def create(self, generation: str, dimension: int, size: int, index_type: str) -> MilvusIndex:
        from pymilvus import DataType, MilvusClient

        if index_type == "auto":
            index_type = "hnsw" if size >= HNSW_FROM else "flat"
        if index_type not in ("flat", "hnsw"):
            raise ValueError(f"unknown Milvus index type {index_type!r}")
        name = self.collection(generation)
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
        with self.errors(f"cannot create the collection {name}"):
            if self.client.has_collection(name):  # a killed build's, never live (the live one has a folder)
                self.client.drop_collection(name)
            self.client.create_collection(name, schema=schema)
        return MilvusIndex(self, name, index_type.upper(), dimension, count=0)

    def open(self, path: Path, description: dict) -> MilvusIndex:
        try:
            saved = json.loads(path.read_bytes())
            name, dimension, count = str(saved["collection"]), int(saved["dimension"]), int(saved["count"])
        except (OSError, ValueError, TypeError, KeyError):
            raise ValueError("is not a Milvus collection description") from None
        with self.errors(f"cannot load the collection {name}"):
            if not self.client.has_collection(name):
                raise ValueError(f"names the Milvus collection {name}, which {self.uri} does not hold")
            self.client.load_collection(name)
            found = self.client.describe_index(name, "vector")
            rows = int(self.client.get_collection_stats(name)["row_count"])
        index = MilvusIndex(self, name, str(found.get("index_type")), dimension, count)
        if rows != count or index.describe() != description or found.get("metric_type") != "IP":
            raise ValueError(f"disagrees with the Milvus collection {name} ({rows} rows, {found.get('index_type')})")
        return index

    def live(self, index_dir: Path) -> str | None:
        with self.errors("cannot read the live index's alias"):
            if self.prefix not in self.client.list_aliases()["aliases"]:
                return None
            target = self.client.describe_alias(self.prefix)["collection_name"]
        start = self.prefix + "_"
        return target[len(start) :].replace("_", "-") if target.startswith(start) else target

    def switch(self, index_dir: Path, generation: str) -> None:
        with self.errors("cannot switch the live index's alias"):
            if self.prefix in self.client.list_aliases()["aliases"]:
                self.client.alter_alias(self.collection(generation), self.prefix)
            else:
                self.client.create_alias(self.collection(generation), self.prefix)

    def retire(self, keep: set[str]) -> None:
        kept = {self.collection(generation) for generation in keep}
        with self.errors("cannot drop the collections of old builds"):
            for name in self.client.list_collections():
                if name.startswith(self.prefix + "_gen_") and name not in kept:
                    self.client.drop_collection(name)

    @contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        """Milvus's exceptions as one line naming where and what to do."""
        from pymilvus.exceptions import MilvusException

        try:
            yield
        except MilvusException as exc:
            raise RagError(f"Milvus at {self.uri}: {doing}: {exc.message}") from None


def _client(uri: str, token: str):
    """One client per Milvus and credentials for the whole process (an embedded one can only
    be opened once)."""
    with _clients_lock:
        client = _clients.get((uri, token))
        if client is None:
            client = _clients[(uri, token)] = _connect(uri, token)
        return client


def _connect(uri: str, token: str):
    try:
        from pymilvus import MilvusClient
        from pymilvus.exceptions import MilvusException
    except ImportError:
        raise RagError(
            "RAG_VECTOR_STORE=milvus needs pymilvus and milvus-lite: pip install 'rag-news[milvus]'"
        ) from None
    # pymilvus and milvus-lite log every failed call with its traceback (an embedded server too,
    # for the calls milvus-lite does not implement and pymilvus does without); our errors say it in one line.
    for name in ("pymilvus", "pymilvus.milvus_client", "milvus_lite.server_manager", "grpc._server"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    embedded = not uri.startswith(_SERVER_SCHEMES)
    if embedded:
        try:
            Path(uri).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RagError(f"cannot create the folder of the embedded Milvus database {uri}: {exc.strerror}") from None
    try:
        return MilvusClient(uri=uri, token=token)
    except MilvusException as exc:
        if embedded and _locked(Path(uri)):
            raise RagError(
                f"the embedded Milvus database {uri} is open in another process (a running `rag serve`?); "
                "stop it, add documents through that server, or serve Milvus to several processes "
                "(docs/model-and-index.md, 'Milvus')"
            ) from None
        raise RagError(f"cannot open Milvus at {uri}: {exc.message}") from None


def _locked(database: Path) -> bool:
    """Whether another process holds milvus-lite's lock on the embedded database (a flock on its LOCK file)."""
    try:
        with open(database / "LOCK", "rb") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


class MilvusIndex:
    """One generation's collection; rows are sentence rows, the primary key."""

    backend = MilvusStore.name

    def __init__(self, store: MilvusStore, name: str, index_type: str, dimension: int, count: int):
        self.store, self.name, self.index_type = store, name, index_type
        self._dimension, self._count = dimension, count

    def add(self, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        with self.store.errors(f"cannot add vectors to {self.name}"):
            for start in range(0, len(vectors), INSERTED_AT_ONCE):
                chunk = vectors[start : start + INSERTED_AT_ONCE]
                first = self._count + start
                self.store.client.insert(self.name, [{"id": first + i, "vector": v} for i, v in enumerate(chunk)])
        self._count += len(vectors)

    def save(self, path: Path) -> None:
        client = self.store.client
        params = client.prepare_index_params()
        if self.index_type == "HNSW":
            # Nested: milvus-lite reads only a "params" entry (a server reads both forms).
            build = {"M": HNSW_NEIGHBOURS, "efConstruction": HNSW_EF_CONSTRUCTION}
            params.add_index(field_name="vector", index_type="HNSW", metric_type="IP", params={"params": build})
        else:
            params.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
        with self.store.errors(f"cannot index {self.name}"):
            client.flush(self.name)
            client.create_index(self.name, params)  # waits until the index is built
            client.load_collection(self.name)
        document = {"collection": self.name, "dimension": self._dimension, "count": self._count}
        path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")

    def search(self, queries: np.ndarray, k: int, within: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        search_params = {"metric_type": "IP", "params": {"ef": HNSW_EF_SEARCH} if self.index_type == "HNSW" else {}}
        # The ranges as a filter on the primary key (the row): one clause per range.
        where = "" if within is None else " or ".join(f"(id >= {int(a)} and id < {int(b)})" for a, b in within)
        with self.store.errors(f"cannot search {self.name}"):
            found = self.store.client.search(
                self.name,
                data=list(queries),
                limit=k,
                filter=where,
                anns_field="vector",
                output_fields=["id"],
                search_params=search_params,
            )
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        rows = np.full((len(queries), k), -1, dtype=np.int64)
        for i, hits in enumerate(found):
            for j, hit in enumerate(hits[:k]):
                scores[i, j], rows[i, j] = hit["distance"], hit["id"]
        return scores, rows

    def reconstruct(self, rows: np.ndarray) -> np.ndarray:
        wanted = [int(row) for row in rows]
        vectors = np.zeros((len(wanted), self._dimension), dtype=np.float32)
        with self.store.errors(f"cannot read vectors of {self.name}"):
            for start in range(0, len(wanted), READ_AT_ONCE):
                chunk = wanted[start : start + READ_AT_ONCE]
                found = self.store.client.get(self.name, ids=chunk, output_fields=["vector"])
                got = {r["id"]: r["vector"] for r in found}
                if len(got) != len(set(chunk)):
                    raise IndexInvalidError(f"Milvus collection {self.name} lacks rows it should hold; {FIX}")
                vectors[start : start + len(chunk)] = [got[row] for row in chunk]
        return vectors

    def count(self) -> int:
        return self._count

    def dimension(self) -> int:
        return self._dimension

    def describe(self) -> dict:
        description = {"backend": self.backend, "type": self.index_type, "metric": "inner_product", "normalized": True}
        if self.index_type == "HNSW":
            description.update(neighbours=HNSW_NEIGHBOURS, ef_search=HNSW_EF_SEARCH)
        return description
