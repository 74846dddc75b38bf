"""Related coverage: other outlets' articles on the same story as one article.

``postings`` reads candidates straight from the index within a time window, ``rank`` is the pure
core that scores, excludes and diversifies them (tests call it with data), and ``finder`` ties the
two to the live index with a per-version cache (``RelatedFinder``).
"""
