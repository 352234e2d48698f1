"""Make a built GX Data Docs site work with no network.

GX 1.24's pages load their CSS, JavaScript and fonts from CDNs (Bootstrap, jQuery,
bootstrap-table, font-awesome, vega). Offline, the pages render unstyled, the index's results
table stays empty (bootstrap-table fills it from a JavaScript literal) and the Status column's
pass/fail icons (font-awesome ``<i>`` elements) are blank, so no one can see which rule failed.

:func:`make_offline` copies the files vendored in ``expectations/data_docs_assets/`` (pinned npm
versions, listed with their sha256 in its ``MANIFEST.json``; refreshed by
``scripts/vendor_data_docs_assets.py``) into ``<site>/static/vendor/`` and points every page at
them, relative to the page's depth, so the site also works when moved (published to
``output/<YYYY-MM>/data_docs/``) or served over HTTP. A page that loads any other external URL
stops the build, naming the page and URL: a GX upgrade cannot silently bring back a blank page.
Links a reader may click (``<a href>``) are not loads and are left alone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[3]
ASSETS_DIR = REPO / "expectations" / "data_docs_assets"
VENDOR_SUBDIR = "static/vendor"

#: GX's own logos, loaded from its S3 bucket (with a ``?d=<time>`` query): GX also copies
#: ``logo-long.png`` into every site, so the pages use that copy (also for the dark theme's logo).
GX_LOCAL = {
    "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/logo-long.png": "static/images/logo-long.png",
    "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/full_logo_dark.png": "static/images/logo-long.png",
}

IG_LINK_TEXT = "IG summary: rules that fired, rows affected"
#: The IG summary page is written beside the site (``<run dir>/dq/index.html``).
IG_LINK_TARGET = "../dq/index.html"
IG_LINK_ID = "mhsds-ig-summary-link"

_CSS_REF = re.compile(r"""url\(\s*['"]?([^'")]+?)['"]?\s*\)|@import\s+['"]([^'"]+)['"]""")
_RESOURCE_ATTRS = {"src", "srcset", "poster", "background", "data"}
_TAG_WITH_VENDOR = re.compile(r"<(?:script|link)\b[^>]*static/vendor/[^>]*>", re.I)
_SRI_ATTRS = re.compile(r"""\s+(?:integrity|crossorigin)(?:=(?:"[^"]*"|'[^']*'|[^\s>]+))?""", re.I)
#: GX's pass / fail icons (font-awesome glyphs, no text): named, so a screen reader and a hover
#: say what they mean.
_STATUS_ICONS = (
    (
        re.compile(r'<i class="(fas fa-times text-danger[^"]*)"'),
        r'<i title="Failed" aria-label="Failed" class="\1"',
    ),
    (
        re.compile(r'<i class="(fas fa-check-circle text-success[^"]*)"'),
        r'<i title="Passed" aria-label="Passed" class="\1"',
    ),
)


#: GX's newsletter footer: fixed to the bottom of the window, it covers a page's last result row
#: (and offers an internet sign-up to an offline IG reader). Dropped.
_NEWSLETTER_FOOTER = re.compile(
    r"<footer>\s*<p>Stay current on everything GX with our newsletter.*?</footer>", re.S
)


class OfflineDocsError(RuntimeError):
    """A Data Docs page loads something from the network that is not vendored."""


def vendor_dir_name(package: str, version: str) -> str:
    """Folder of one vendored npm package: ``@fortawesome/fontawesome-free`` 6.6.0 ->
    ``fortawesome-fontawesome-free-6.6.0``."""
    return f"{package.lstrip('@').replace('/', '-')}-{version}"


def is_external(url: str) -> bool:
    """Would a browser fetch ``url`` from another machine (absolute or protocol-relative)?"""
    return bool(re.match(r"\s*(?:[a-z][a-z0-9+.-]*:)?//", url, re.I)) and not url.strip().lower().startswith(
        "file:"
    )


def css_refs(css: str) -> list[str]:
    """Every ``url(...)`` and ``@import`` target in a stylesheet."""
    return [a or b for a, b in _CSS_REF.findall(css)]


class _Loads(HTMLParser):
    """Collects what a page makes the browser load: ``src``-like attributes, stylesheet and
    icon ``<link>``s, and ``url()`` / ``@import`` in ``<style>`` and ``style=``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in _RESOURCE_ATTRS or (name == "href" and tag == "link"):
                parts = [p.strip().split(" ")[0] for p in value.split(",")] if name == "srcset" else [value]
                self.urls.extend(parts)
            elif name == "style":
                self.urls.extend(css_refs(value))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.urls.extend(css_refs(data))


def loads(html: str) -> list[str]:
    """Every URL ``html`` loads (not the ones it merely links to), in order, once each."""
    parser = _Loads()
    parser.feed(html)
    parser.close()
    return list(dict.fromkeys(u.strip() for u in parser.urls))


def external_resources(html: str) -> list[str]:
    """The external URLs ``html`` loads."""
    return [u for u in loads(html) if is_external(u)]


def _fix_local(text: str, where: Path, docs_dir: Path) -> str:
    """Re-anchor a site file the page loads from the wrong depth (GX 1.24's favicon link on a
    validation result page climbs one directory too few, and the browser logs a missing file)."""
    for url in loads(text):
        if is_external(url) or url.startswith(("data:", "#", "file:", "/")) or "static/" not in url:
            continue
        path = url.split("?")[0].split("#")[0]
        if (where.parent / path).exists():
            continue
        anchored = docs_dir / path[path.index("static/") :]
        if anchored.is_file():
            relative = Path(os.path.relpath(anchored, where.parent)).as_posix()
            text = text.replace(f'"{url}"', f'"{relative}"')
        else:
            log.warning("Data Docs page %s loads %s, which is not in the site", where, url)
    return text


def load_manifest(assets_dir: Path = ASSETS_DIR) -> dict:
    path = assets_dir / "MANIFEST.json"
    if not path.exists():
        raise OfflineDocsError(f"{path} is missing: run scripts/vendor_data_docs_assets.py")
    return json.loads(path.read_text())


def copy_assets(docs_dir: Path, assets_dir: Path = ASSETS_DIR) -> dict[str, str]:
    """Copy the vendored files into ``<docs_dir>/static/vendor/`` (each checked against its
    manifest sha256) and return CDN URL -> file path relative to ``docs_dir``."""
    manifest = load_manifest(assets_dir)
    target = docs_dir / VENDOR_SUBDIR
    entries = manifest["assets"] + manifest.get("referenced_by_css", [])
    for entry in entries:
        src = assets_dir / entry["file"]
        data = src.read_bytes() if src.exists() else b""
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise OfflineDocsError(
                f"{src} is missing or differs from MANIFEST.json (sha256): "
                "re-run scripts/vendor_data_docs_assets.py or restore the file from git"
            )
        dest = target / entry["file"]
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
    for licence in assets_dir.glob("*/LICENSE"):
        shutil.copyfile(licence, target / licence.parent.name / "LICENSE")
    urls = {a["url"]: f"{VENDOR_SUBDIR}/{a['file']}" for a in manifest["assets"]}
    urls.update(GX_LOCAL)
    return urls


def _local_target(url: str, urls: dict[str, str]) -> str | None:
    if url in urls:
        return urls[url]
    for prefix, local in GX_LOCAL.items():
        if url.startswith(prefix + "?"):
            return local
    return None


def rewrite(text: str, where: Path, docs_dir: Path, urls: dict[str, str], *, css: bool = False) -> str:
    """``text`` (a page, or a stylesheet if ``css``) at ``where`` with every external load
    pointed at its vendored copy, relative to ``where``; raises naming any URL not vendored."""
    found = list(dict.fromkeys(css_refs(text))) if css else external_resources(text)
    found = [u for u in found if is_external(u)]
    for url in sorted(found, key=len, reverse=True):
        local = _local_target(url, urls)
        if local is None:
            raise OfflineDocsError(
                f"{where}: loads {url}, which is not vendored; Data Docs would need the network. "
                "Add it to scripts/vendor_data_docs_assets.py (ASSETS) and re-run it."
            )
        relative = Path(os.path.relpath(docs_dir / local, where.parent)).as_posix()
        text = re.sub(re.escape(url) + r"(?=[\"')\s>])", lambda _m, r=relative: r, text)
    if not css:
        # GX pins two scripts with Subresource Integrity and crossorigin: a CORS fetch that a
        # browser refuses for file:// pages. The copies are checked against MANIFEST.json.
        text = _TAG_WITH_VENDOR.sub(lambda m: _SRI_ATTRS.sub("", m.group(0)), text)
        for icon, named in _STATUS_ICONS:
            text = icon.sub(named, text)
        text = _fix_local(_NEWSLETTER_FOOTER.sub("", text), where, docs_dir)
        left = external_resources(text)
    else:
        left = [u for u in css_refs(text) if is_external(u)]
    if left:  # pragma: no cover - a URL the rewrite did not match where the parser found it
        raise OfflineDocsError(f"{where}: still loads {left[0]} after the rewrite")
    return text


def add_ig_link(index: Path, target: str = IG_LINK_TARGET) -> None:
    """A visible link from the site's index to the IG summary page, above the results."""
    text = index.read_text(encoding="utf-8")
    if IG_LINK_ID in text:
        return
    link = (
        f'<div class="container-fluid pt-3 pl-5 pr-5"><p class="lead mb-0">'
        f'<a id="{IG_LINK_ID}" class="btn btn-outline-primary" href="{target}">{IG_LINK_TEXT}</a>'
        f"</p></div>\n"
    )
    body = re.search(r"<body\b[^>]*>", text, re.I)
    if body is None:
        raise OfflineDocsError(f"{index}: no <body> to add the IG summary link to")
    main = text.find('<div class="container-fluid', body.end())
    at = main if main != -1 else body.end()
    index.write_text(text[:at] + link + text[at:], encoding="utf-8")


def make_offline(docs_dir: Path, assets_dir: Path = ASSETS_DIR, ig_link: str | None = IG_LINK_TARGET) -> int:
    """Vendor the assets into ``docs_dir`` and rewrite its pages; returns the pages rewritten."""
    urls = copy_assets(docs_dir, assets_dir)
    vendor = docs_dir / VENDOR_SUBDIR
    pages = 0
    for path in sorted(docs_dir.rglob("*")):
        if path.suffix not in (".html", ".css") or vendor in path.parents:
            continue
        text = path.read_text(encoding="utf-8")
        new = rewrite(text, path, docs_dir, urls, css=path.suffix == ".css")
        if new != text:
            path.write_text(new, encoding="utf-8")
        pages += path.suffix == ".html"
    if ig_link and (docs_dir / "index.html").exists():
        add_ig_link(docs_dir / "index.html", ig_link)
    return pages


__all__ = ["OfflineDocsError", "add_ig_link", "external_resources", "make_offline", "rewrite"]
