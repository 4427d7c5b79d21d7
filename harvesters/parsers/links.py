"""What a link points at, judged from its URL alone: a document, slides, a recording.

Light on purpose (no HTML parser): the web kinds ask it of every link they meet."""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import unquote, urlsplit

from pipeline.normalize import clean_text

DOCUMENT_SUFFIXES = (".pdf", ".ppt", ".pptx", ".pps", ".ppsx", ".odp", ".key", ".doc", ".docx", ".odt", ".rtf",
                     ".xls", ".xlsx")
SLIDE_SUFFIXES = (".ppt", ".pptx", ".pps", ".ppsx", ".odp", ".key")
VIDEO_HOSTS = ("youtube.com", "youtu.be", "youtube-nocookie.com", "vimeo.com", "kaltura.com", "panopto.com",
               "wistia.com", "wistia.net", "vidyard.com", "brightcove.net", "mediaspace.", "zoom.us/rec")
VIDEO_SUFFIXES = (".mp4", ".webm", ".m4v", ".mov")


def url_path_lower(url: str) -> str:
    try:
        return urlsplit(url).path.lower()
    except ValueError:
        return ""


@lru_cache(maxsize=65536)  # the pages of a site link the same URLs again and again
def is_document_url(url: str) -> bool:
    """A link to a PDF, a slide deck or an office document (by its path)."""
    return url_path_lower(url).endswith(DOCUMENT_SUFFIXES)


def is_slides_url(url: str) -> bool:
    return url_path_lower(url).endswith(SLIDE_SUFFIXES)


@lru_cache(maxsize=65536)
def is_video_url(url: str) -> bool:
    """A link to a recording on a video platform."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    where = ((parts.hostname or "").lower() + parts.path.lower())
    if where.startswith("www."):
        where = where[4:]
    return any(h in where for h in VIDEO_HOSTS) or parts.path.lower().endswith(VIDEO_SUFFIXES)


def document_title(url: str, text: str = "") -> str:
    """A title for a linked document: its link text, else its file name."""
    if text and text.lower() not in ("pdf", "slides", "download", "here", "click here", "link"):
        return text
    name = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
    name = unquote(name)
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return clean_text(stem.replace("_", " ").replace("-", " ")) or name or url


#: File types that are not web pages (Scrapy's ``IGNORED_EXTENSIONS``, which a crawl starts
#: from, plus feeds, data and fonts). Documents (``.pdf``, ``.pptx``…) are left to the
#: ``documents`` option, not to this list.
EXTRA_NON_PAGE_EXTENSIONS = ("xml", "json", "ics", "ical", "atom", "txt", "csv", "tsv", "gz", "tgz", "bz2", "zst",
                             "woff", "woff2", "ttf", "otf", "eot", "map", "avif", "heic", "epub", "mobi", "m3u8",
                             "opus", "flac", "mkv", "mpeg", "svgz", "torrent", "deb", "rpm", "pkg")


@lru_cache(maxsize=1)
def non_page_suffixes() -> tuple[str, ...]:
    from scrapy.linkextractors import IGNORED_EXTENSIONS

    return tuple(f".{e}" for e in dict.fromkeys([*IGNORED_EXTENSIONS, *EXTRA_NON_PAGE_EXTENSIONS]))


@lru_cache(maxsize=65536)
def is_non_page_url(url: str) -> bool:
    """A link whose extension says it is not a web page (an image, a script, a feed, an
    archive…); documents are not counted here (see :func:`is_document_url`)."""
    path = url_path_lower(url)
    return path.endswith(non_page_suffixes()) and not path.endswith(DOCUMENT_SUFFIXES)
