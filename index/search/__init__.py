"""Search: a reader's query string -> a page of ranked, filtered, collapsed hits with facets and snippets.

The path of a query, one module each: ``query`` parses the text (never raises), ``budget`` bounds
what it may cost, ``compile`` turns it into Whoosh queries analyzed as the index was, ``scoring``
and ``doctable`` rank and filter with numpy over per-document columns, ``facets``, ``snippets`` and
``suggest`` dress the page, and ``engine`` runs them against the live index (``IndexReader``, ``search``).
``latest`` lists the newest entries for the front page. Nothing here writes the index.
"""
