"""The lead image: from media:content/thumbnail, enclosures, or the body's first image."""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..models import Image, ParsedMedia
from .html import ContentImage
from .limits import CAPTION, cap_line, fits_url, raw_line
from .text import clean_line
from .urls import canonical_url, image_key, is_http_url

_IMAGE_PATH = re.compile(r"\.(?:jpe?g|png|gif|webp|avif|bmp)(?:$|[?#])", re.IGNORECASE)
_MEDIA_ORIGINS = ("media:content", "media:thumbnail", "enclosure")


def _is_image(media: ParsedMedia) -> bool:
    kind = (media.type or "").lower()
    if kind.startswith("image"):
        return True
    if kind and kind not in ("", "application/octet-stream"):
        return False
    return media.origin == "media:thumbnail" or bool(_IMAGE_PATH.search(media.url))


def _lead_media(media: Sequence[ParsedMedia], base: str | None) -> tuple[ParsedMedia, str] | None:
    """Return the feed's own picture for the entry and its canonical URL, or None."""
    ranked = sorted(
        (m for m in media if _is_image(m)),
        # media:content before thumbnails before enclosures; the widest first within each.
        key=lambda m: (_MEDIA_ORIGINS.index(m.origin) if m.origin in _MEDIA_ORIGINS else 3, -(m.width or 0)),
    )
    for item in ranked:
        url = canonical_url(item.url, base)
        if is_http_url(url) and fits_url(url):
            return item, url
    return None


def lead_media_url(media: Sequence[ParsedMedia], base: str | None) -> str | None:
    """Return the URL of the picture the feed names for the entry (media:content, ...), or None."""
    found = _lead_media(media, base)
    return found[1] if found else None


def lead_image(media: Sequence[ParsedMedia], body_images: Sequence[ContentImage], base: str | None) -> Image | None:
    """Return the entry's lead image with a plain-text caption, or None."""
    found = _lead_media(media, base)
    if found is not None:
        item, url = found
        # The body's figure often shows the same picture in another rendition (?w=1024) with the caption.
        captions = {image_key(image.url): image.caption for image in body_images if image.caption}
        caption = clean_line(raw_line(item.caption, CAPTION)) or captions.get(image_key(url)) or None
        return Image(url=url, caption=_capped(caption))
    for image in body_images:
        url = canonical_url(image.url, base)
        if is_http_url(url) and fits_url(url):
            return Image(url=url, caption=_capped(image.caption))
    return None


def _capped(caption: str | None) -> str | None:
    return cap_line(caption, CAPTION) if caption else None
