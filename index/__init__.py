"""Whoosh lives here and nowhere else: the derived full-text index, search and related coverage.

The writer's side sits at the top (``schema``, ``indexer``, ``follower``, ``dupgroups``, ``health``,
``writelock``); reading it is in two rooms: ``index.search`` (a query to a page of hits) and
``index.related`` (other outlets' coverage of one article).
"""
