"""Whoosh lives here and nowhere else: the derived full-text index, search and related coverage."""
