"""The index on disk: generations swapped atomically, each holding a vector index, the
sentences' token vectors, the metadata and a manifest; everything verified on load."""
