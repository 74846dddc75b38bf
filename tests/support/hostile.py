"""Hostile feeds and the misbehaving routes that serve them, for tests/test_hostile_feeds.py.

Every document here is written from scratch for the tests: entity bombs, external entities,
megabyte fields, 20,000 items, control characters, script and javascript: in every field. The
route handlers misbehave at the HTTP level (bombs, endless and trickling bodies and headers,
redirect loops and chains) on a FeedServer from tests/support/httpserver.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler

import brotli

from ..feedgen import gzip_bomb, rss
from .httpserver import FeedServer, Reply

#: Script and javascript: payloads put into every field a feed can carry.
SCRIPT = "<script>alert('xss')</script>"
JS_URL = "javascript:alert('xss')"
#: Control characters a hostile feed puts into text: NUL, an ANSI "clear screen", BEL, DEL, a C1 CSI.
CONTROL = "\x00\x1b[2J\x07\x7f\x9b"


def _date(hours_ago: float) -> str:
    return format_datetime(datetime.now(UTC) - timedelta(hours=hours_ago), usegmt=True)


def good_feed(word: str, title: str, count: int = 4) -> bytes:
    """Return a well-behaved RSS feed whose items all mention ``word``."""
    items = "".join(
        f"<item><title>{word.title()} report {i}</title><link>https://{word}.example/news/{i}</link>"
        f"<guid>https://{word}.example/news/{i}</guid><pubDate>{_date(i * 3)}</pubDate>"
        f"<description>The {word} committee met again on day {i} and published its findings.</description></item>"
        for i in range(count)
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{title}</title>'
        f"<link>https://{word}.example/</link><description>d</description>{items}</channel></rss>"
    ).encode()


def billion_laughs() -> bytes:
    """Return the classic nested-entity bomb: ten levels of ten references, 10^9 "lol"s expanded."""
    levels = ['<!ENTITY lol0 "lol">']
    levels += [f'<!ENTITY lol{n} "{("&lol" + str(n - 1) + ";") * 10}">' for n in range(1, 10)]
    return (
        '<?xml version="1.0"?>\n<!DOCTYPE rss [\n' + "\n".join(levels) + "\n]>\n"
        '<rss version="2.0"><channel><title>Laughs</title><link>https://laughs.example/</link>'
        "<item><title>&lol9;</title><link>https://laughs.example/1</link><description>&lol9;</description></item>"
        "</channel></rss>"
    ).encode()


def quadratic_blowup(entity_size: int = 50_000, references: int = 3_000) -> bytes:
    """Return one ~50 KB entity referenced thousands of times: ~150 KB on the wire, ~150 MB expanded."""
    refs = "&big;" * references
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY big "{"B" * entity_size}">\n]>\n'
        '<rss version="2.0"><channel><title>Quadratic</title><link>https://quadratic.example/</link>'
        f"<item><title>blowup</title><link>https://quadratic.example/1</link><description>{refs}</description></item>"
        "</channel></rss>"
    ).encode()


def external_entities(secret_path: str, dtd_url: str) -> bytes:
    """Return a feed that asks for a local file (XXE), a parameter entity and an external DTD."""
    return (
        '<?xml version="1.0"?>\n'
        f'<!DOCTYPE rss SYSTEM "{dtd_url}" [\n'
        f'<!ENTITY xxe SYSTEM "file://{secret_path}">\n'
        f'<!ENTITY % remote SYSTEM "{dtd_url}">\n'
        "%remote;\n]>\n"
        '<rss version="2.0"><channel><title>Entities &xxe;</title><link>https://xxe.example/</link>'
        "<item><title>Leak &xxe;</title><link>https://xxe.example/1</link>"
        "<description>Secret: &xxe;</description></item></channel></rss>"
    ).encode()


def invalid_utf8() -> bytes:
    """Return a feed declared UTF-8 whose bytes are not (a lone 0xff, a cut sequence, an overlong form)."""
    return (
        b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Broken \xff bytes</title>'
        b"<link>https://broken.example/</link><item><title>Caf\xc3 cr\xe8me \xc0\xaf quinoa</title>"
        b"<link>https://broken.example/1</link><guid>https://broken.example/1</guid>"
        b"<description>Quinoa harvest \xed\xa0\x80 notes \xff\xfe</description></item></channel></rss>"
    )


def huge_fields() -> bytes:
    """Return one item whose every field is megabytes long (about 8 MB in all)."""
    tags = "".join(f"<category>tag {i}</category>" for i in range(5_000))
    paragraphs = "".join(
        f"<p>Paragraph {i} about colossal fields. " + "Padding words. " * 60 + "</p>" for i in range(2_000)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<channel><title>{'Colossal feed title ' * 50_000}</title>"
        f"<link>https://colossal.example/{'p' * 100_000}</link><description>d</description>"
        f"<item><title>Colossal {'title ' * 600_000}</title>"
        f"<link>https://colossal.example/{'a' * 1_000_000}</link><guid>{'g' * 100_000}</guid>"
        f"<dc:creator>{'Author ' * 100_000}</dc:creator>{tags}<pubDate>{_date(1)}</pubDate>"
        f"<description><![CDATA[{paragraphs}]]></description></item></channel></rss>"
    ).encode()


def many_entries(count: int = 20_000) -> bytes:
    """Return a feed of ``count`` dated items, newest first."""
    return rss(count, title="Archive dump")


def control_characters() -> bytes:
    """Return a feed with NUL, ESC and other controls in every text field, raw and as character references."""
    c = CONTROL.replace("\x00", "").encode("utf-8")  # raw NUL makes expat stop; the rest go in raw
    refs = b"&#0;&#x1b;[2J&#7;"
    return (
        b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        b"<channel><title>Control " + c + refs + b" feed\x00</title><link>https://control.example/</link>"
        b"<description>d" + c + b"</description>"
        b"<item><title>Control " + c + refs + b" title\x00</title><link>https://control.example/1" + c + b"</link>"
        b"<guid>https://control.example/1</guid><dc:creator>Ann " + c + refs + b"</dc:creator>"
        b"<category>tag" + c + refs + b"</category><pubDate>" + _date(1).encode() + b"</pubDate>"
        b"<description>Body " + c + refs + b" text about control characters.\x00</description></item>"
        b"</channel></rss>"
    )


def script_injection() -> bytes:
    """Return an Atom and RSS mix of script and javascript: payloads in every feed- and entry-level field."""
    s = SCRIPT.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:media="http://search.yahoo.com/mrss/">'
        f"<channel><title>Injected {s} feed</title><link>{JS_URL}</link><description>{s}</description>"
        f"<language>{s}</language><image><url>{JS_URL}</url><title>{s}</title><link>{JS_URL}</link></image>"
        f"<item><title>Injected {s} title</title><link>{JS_URL}</link><guid>{JS_URL}</guid>"
        f"<comments>{JS_URL}</comments><dc:creator>Eve {s}</dc:creator><category>{s}</category>"
        f"<pubDate>{_date(1)}</pubDate><description>Injected body {s} "
        f"&lt;a href=&quot;{JS_URL}&quot;&gt;link&lt;/a&gt; &lt;img src=x onerror=alert(1)&gt;</description>"
        f'<content:encoded><![CDATA[<p>Injected content {SCRIPT}<a href="{JS_URL}">x</a>'
        f'<img src="{JS_URL}" onerror="alert(1)"><iframe src="{JS_URL}"></iframe></p>]]></content:encoded>'
        f'<media:content url="{JS_URL}" medium="image"><media:description>{s}</media:description></media:content>'
        f'<enclosure url="{JS_URL}" type="image/png" length="1"/></item>'
        f"<item><title>{s}</title><link>https://injected.example/2</link><description>Second injected story "
        f"{s}</description><pubDate>{_date(2)}</pubDate></item></channel></rss>"
    ).encode()


# --------------------------------------------------------------------------- misbehaving routes


def _write_or_stop(request: BaseHTTPRequestHandler, writes: Callable[[], None]) -> None:
    try:
        writes()
    except (BrokenPipeError, ConnectionResetError):
        return


def endless_body(request: BaseHTTPRequestHandler) -> None:
    """Send a 200 and then feed-looking bytes forever, as fast as the client reads."""

    def writes() -> None:
        request.send_response(200)
        request.send_header("Content-Type", "application/rss+xml")
        request.send_header("Connection", "close")
        request.end_headers()
        request.wfile.write(b'<?xml version="1.0"?><rss version="2.0"><channel><title>Endless</title>')
        chunk = b"<item><title>again</title></item>" * 2048
        while True:
            request.wfile.write(chunk)

    _write_or_stop(request, writes)


def trickling_body(request: BaseHTTPRequestHandler) -> None:
    """Send headers at once, then one byte of the body every half second."""

    def writes() -> None:
        body = good_feed("trickle", "Trickle")
        request.send_response(200)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        for byte in body:
            request.wfile.write(bytes([byte]))
            request.wfile.flush()
            time.sleep(0.5)

    _write_or_stop(request, writes)


def trickling_headers(request: BaseHTTPRequestHandler) -> None:
    """Send the status line and headers one byte every quarter second, never finishing them."""

    def writes() -> None:
        for byte in b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * 10_000:
            request.wfile.write(bytes([byte]))
            request.wfile.flush()
            time.sleep(0.25)

    _write_or_stop(request, writes)


def serve_hostile_feeds(server: FeedServer, secret_path: str) -> dict[str, str]:
    """Route every hostile feed on ``server``; return name -> URL."""
    xml = {"Content-Type": "application/rss+xml"}
    documents = {
        "billion-laughs": billion_laughs(),
        "quadratic-blowup": quadratic_blowup(),
        "external-entities": external_entities(secret_path, server.url("/evil.dtd")),
        "invalid-utf8": invalid_utf8(),
        "huge-fields": huge_fields(),
        "many-entries": many_entries(),
        "control-characters": control_characters(),
        "script-injection": script_injection(),
    }
    urls: dict[str, str] = {}
    for name, body in documents.items():
        server.route(f"/{name}", Reply(200, body, xml))
        urls[name] = server.url(f"/{name}")
    server.route("/evil.dtd", Reply(200, f'<!ENTITY leak SYSTEM "file://{secret_path}">'.encode(), xml))
    server.route("/gzip-bomb", Reply(200, gzip_bomb(), {**xml, "Content-Encoding": "gzip"}))
    server.route("/brotli-bomb", Reply(200, _brotli_bomb(), {**xml, "Content-Encoding": "br"}))
    server.route("/endless-body", endless_body)
    server.route("/trickling-body", trickling_body)
    server.route("/trickling-headers", trickling_headers)
    server.route("/redirect-loop", Reply(302, b"", {"Location": "/redirect-loop-2"}))
    server.route("/redirect-loop-2", Reply(302, b"", {"Location": "/redirect-loop"}))
    for hop in range(50):
        server.route(f"/chain-{hop}", Reply(301, b"", {"Location": f"/chain-{hop + 1}"}))
    server.route("/chain-50", Reply(200, good_feed("chain", "Chain end")))
    for name in ("gzip-bomb", "brotli-bomb", "endless-body", "trickling-body", "trickling-headers", "redirect-loop"):
        urls[name] = server.url(f"/{name}")
    urls["redirect-chain"] = server.url("/chain-0")
    return urls


_BROTLI_BOMB: list[bytes] = []


def _brotli_bomb() -> bytes:
    """Return (once built) a brotli stream of 200 MiB of zeros, a few hundred bytes on the wire."""
    if not _BROTLI_BOMB:
        _BROTLI_BOMB.append(brotli.compress(bytes(200 * 2**20), quality=5))
    return _BROTLI_BOMB[0]
