"""The lead image: from media:content/thumbnail, enclosures, or the body's first image."""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from ..models import Image, ParsedMedia
from .html import ContentImage
from .limits import CAPTION, cap_line, fits_url, raw_line
from .text import clean_line
from .urls import canonical_url, is_http_url

_IMAGE_PATH = re.compile(r"\.(?:jpe?g|png|gif|webp|avif|bmp)(?:$|[?#])", re.IGNORECASE)


def _is_image(media: ParsedMedia) -> bool:
    kind = (media.type or "").lower()
    if kind.startswith("image"):
        return True
    if kind and kind not in ("", "application/octet-stream"):
        return False
    return media.origin == "media:thumbnail" or bool(_IMAGE_PATH.search(media.url))


def _path_key(url: str) -> str:
    # The same picture is often linked with and without resize parameters (?w=1024).
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    return f"{parts.netloc.lower()}{parts.path}"


def lead_image(media: Sequence[ParsedMedia], body_images: Sequence[ContentImage], base: str | None) -> Image | None:
    """Return the entry's lead image with a plain-text caption, or None."""
    captions = {_path_key(image.url): image.caption for image in body_images if image.caption}
    ranked = sorted(
        (m for m in media if _is_image(m)),
        # media:content before thumbnails before enclosures; the widest first within each.
        key=lambda m: (("media:content", "media:thumbnail", "enclosure").index(m.origin)
                       if m.origin in ("media:content", "media:thumbnail", "enclosure") else 3, -(m.width or 0)),
    )  # fmt: skip
    for item in ranked:
        url = canonical_url(item.url, base)
        if is_http_url(url) and fits_url(url):
            caption = clean_line(raw_line(item.caption, CAPTION)) or captions.get(_path_key(url)) or None
            return Image(url=url, caption=_capped(caption))
    for image in body_images:
        url = canonical_url(image.url, base)
        if is_http_url(url) and fits_url(url):
            return Image(url=url, caption=_capped(image.caption))
    return None


def _capped(caption: str | None) -> str | None:
    return cap_line(caption, CAPTION) if caption else None
