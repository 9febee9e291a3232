"""Retrieval-augmented answers about news articles, cited with exact character offsets."""

__version__ = "0.1.0"
