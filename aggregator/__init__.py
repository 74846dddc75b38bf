"""Everything from a feed URL to a stored entry; knows nothing of Whoosh or Flask."""
