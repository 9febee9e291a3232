"""Embedders: text in, pooled sentence vectors and per-token vectors out (``base.Embedder``),
chosen by ``RAG_BACKEND`` from ``factory.EMBEDDERS``; and the default model's offline build."""
