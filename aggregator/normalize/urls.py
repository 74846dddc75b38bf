"""URL canonicalization: absolute, without tracking parameters, default ports or fragments."""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit

# Query parameters that only tell the publisher where a click came from; dropping them makes
# the same article reached from a newsletter, a feed or a social post one URL.
_TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "gclsrc",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "twclid",
        "ttclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "_hsenc",
        "_hsmi",
        "hsctatracking",
        "mkt_tok",
        "oly_anon_id",
        "oly_enc_id",
        "vero_conv",
        "vero_id",
        "wt.mc_id",
        "rb_clickid",
        "s_cid",
        "_ga",
        "_gl",
        "ncid",
        "cmpid",
        "ocid",
        "sr_share",
        "ito",
        "at_medium",
        "at_campaign",
        "at_custom1",
        "at_custom2",
        "at_custom3",
        "at_custom4",
    }
)
_TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "__twitter_impression")
# Generic names that are tracking only with a feed-marker value (NYT: ?partner=rss&emc=rss).
_TRACKING_PAIRS = frozenset(
    {
        (name, value)
        for name in ("partner", "emc", "ref", "src", "source", "from", "cmp")
        for value in ("rss", "feed", "atom")
    }
)
_DEFAULT_PORTS = {"http": "80", "https": "443"}
# Characters RFC 3986 allows unescaped in a path / query; "%" stays so encoding is idempotent.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"
# WHATWG URL parsing drops tabs and newlines anywhere and trims spaces; other control characters go too.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
_PORT = re.compile(r":(\d*)$")
_FEEDBURNER_HOSTS = frozenset({"feedproxy.google.com", "feeds.feedburner.com", "feeds2.feedburner.com"})


def _is_tracking(pair: str) -> bool:
    name, _, value = pair.partition("=")
    key = unquote(name).strip().lower()
    if key in _TRACKING_PARAMS or key.startswith(_TRACKING_PREFIXES):
        return True
    return (key, unquote(value).strip().lower()) in _TRACKING_PAIRS


def _clean_query(query: str) -> str:
    kept = [pair for pair in query.split("&") if pair and not _is_tracking(pair)]
    return quote("&".join(kept), safe=_QUERY_SAFE)


def _clean_netloc(scheme: str, netloc: str) -> str:
    userinfo, at, hostport = netloc.rpartition("@")
    hostport = hostport.lower()
    match = _PORT.search(hostport)
    # Keep IPv6 literals intact: their colons sit inside the brackets.
    if match and (not hostport.startswith("[") or hostport[: match.start()].endswith("]")):
        port = match.group(1)
        if port == "" or port == _DEFAULT_PORTS.get(scheme):
            hostport = hostport[: match.start()]
    return f"{userinfo}{at}{hostport}"


def canonical_url(url: str, base: str | None = None) -> str:
    """Return ``url`` made absolute against ``base`` with tracking parameters, default ports and fragment removed."""
    result = _canonical(url, base)
    # Malformed input ("http://::", "////") can need a second look before it stops changing;
    # stored URLs must be fixed points so that comparing them is meaningful.
    for _ in range(4):
        again = _canonical(result, None)
        if again == result:
            break
        result = again
    return result


def _canonical(url: str, base: str | None) -> str:
    # Feeds wrap links in whitespace and sometimes paste control characters into them.
    url = _CONTROL.sub("", url or "").strip()
    if base:
        try:
            url = urljoin(_CONTROL.sub("", base).strip(), url)
        except ValueError:  # a base we cannot read resolves nothing
            pass
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced "[" in the host part
        return url
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https", ""):
        # mailto:, tag:, urn: ... have no host, path or query rules worth applying.
        return url
    netloc = _clean_netloc(scheme, parts.netloc)
    path = quote(parts.path, safe=_PATH_SAFE)
    if netloc and not path:
        path = "/"
    elif not netloc and path.startswith("//"):
        # Without a host, "//x" would read back as a host name: keep it a path.
        path = "/" + path.lstrip("/")
    return urlunsplit((scheme, netloc, path, _clean_query(parts.query), ""))


def is_http_url(url: str | None) -> bool:
    """Return True when ``url`` is an absolute http(s) URL with a host."""
    if not url:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def is_feedburner_redirect(url: str) -> bool:
    """Return True for a FeedBurner tracking redirect (feedproxy.google.com/~r/...)."""
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return False
    return host in _FEEDBURNER_HOSTS or "/~r/" in url


def article_url(link: str | None, original_link: str | None, base: str | None) -> str | None:
    """Return the canonical http(s) URL of an entry's article, preferring feedburner:origLink, or None."""
    # feedburner:origLink is the publisher's own URL; the <link> beside it is a click-counting redirect.
    for candidate in (original_link, link):
        if not candidate:
            continue
        url = canonical_url(candidate, base)
        if is_http_url(url):
            return url
    return None


# Query parameters that pick a rendition of one picture (size, crop, quality, format, cache buster,
# CDN signature) rather than another picture: ?w=1024, ?width=700&quality=85&auto=format&s=<sig>.
_RENDITION_PARAMS = frozenset(
    {
        "w", "h", "width", "height", "resize", "fit", "crop", "quality", "q", "auto", "format", "fm", "dpr",
        "strip", "zoom", "ssl", "size", "sz", "s", "ixlib", "lossy", "im", "impolicy", "imwidth", "ver", "v",
        "itok", "cache", "rect", "mode", "scale", "output-quality", "output-format",
    }
)  # fmt: skip
# WordPress names its renditions photo-1024x683.jpg beside the original photo.jpg.
_SIZE_SUFFIX = re.compile(r"-\d{2,5}x\d{2,5}(?=\.[A-Za-z0-9]{2,5}$)")


def image_key(url: str) -> str:
    """Return what identifies a picture across its renditions: host, path, and the query parameters that choose it.

    Two URLs with the same key show the same picture: the scheme, size, crop, format and tracking
    parameters and a WordPress size suffix do not count; a parameter such as ?id=7 does.
    """
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url
    kept = sorted(
        pair
        for pair in parts.query.split("&")
        if pair and not _is_tracking(pair) and unquote(pair.partition("=")[0]).strip().lower() not in _RENDITION_PARAMS
    )
    path = _SIZE_SUFFIX.sub("", unquote(parts.path))
    host = parts.netloc.rpartition("@")[2].lower().removeprefix("www.")
    return f"{host}{path}" + (f"?{'&'.join(kept)}" if kept else "")
