"""Offline Data Docs (issue #14): the rewrite on a small synthetic site, and the vendored files.

The browser test (tests/integration/test_data_docs_browser.py) opens a real GX site with the
network cut off; these check the rewrite itself: every CDN load points at the vendored copy,
relative to the page's depth; an external load that is not vendored stops the build, naming it.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
from pathlib import Path

import pytest

from mhsds_pipeline.quality import data_docs as dd

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
BOOTSTRAP_CSS = "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css"
JQUERY = "https://code.jquery.com/jquery-3.7.1.min.js"
POPPER = "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js"
FONT_AWESOME = "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css"
LOGO = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/logo-long.png"
DARK_LOGO = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/full_logo_dark.png"


def _page(extra: str = "") -> str:
    return f"""<!DOCTYPE html><html><head>
<link rel="stylesheet" href="{BOOTSTRAP_CSS}"/>
<link rel="stylesheet" href="{FONT_AWESOME}">
<style>.navbar-brand a {{ background: url('{DARK_LOGO}') 0 0 no-repeat; }}
.ok {{ background: url("data:image/svg+xml;base64,AAAA"); }}</style>
<script src="{JQUERY}"></script>
<script src="{POPPER}" integrity="sha384-abc" crossorigin="anonymous"></script>
{extra}</head><body>
<nav><img class="NO-CACHE" src="{LOGO}?d=20261205T142638.225871Z"/></nav>
<div class="container-fluid pt-4"><i class="fas fa-times text-danger" ></i>
<a href="https://greatexpectations.io">Great Expectations</a></div>
<footer>
  <p>Stay current on everything GX with our newsletter <a href="https://greatexpectations.io/newsletter">Subscribe</a></p>
</footer></body></html>"""


def _site(root: Path, extra: str = "") -> dict[str, Path]:
    pages = {
        "index": root / "index.html",
        "suite": root / "expectations" / "marts__MHS101Referral.html",
        "result": root / "validations" / "marts__MHS101Referral" / "run" / "20261101T000000Z" / "b.html",
    }
    for path in pages.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_page(extra))
    (root / "static" / "images").mkdir(parents=True)
    (root / "static" / "images" / "logo-long.png").write_bytes(b"\x89PNG")
    return pages


def _resolved(page: Path, relative: str) -> Path:
    return Path(os.path.normpath(page.parent / relative))


def test_every_cdn_load_points_at_the_vendored_copy_relative_to_the_page(tmp_path: Path):
    site = tmp_path / "data_docs"
    pages = _site(site)
    assert dd.make_offline(site) == 3
    for name, depth in (("index", 0), ("suite", 1), ("result", 4)):
        text = pages[name].read_text()
        assert dd.external_resources(text) == [], name
        prefix = "../" * depth
        assert f'href="{prefix}static/vendor/bootstrap-4.3.1/dist/css/bootstrap.min.css"' in text
        assert f'src="{prefix}static/vendor/jquery-3.7.1/dist/jquery.min.js"' in text
        assert f'src="{prefix}static/images/logo-long.png"' in text  # GX's own copy, no ?d= query
        assert f"url('{prefix}static/images/logo-long.png')" in text  # the dark theme's logo
        # every rewritten load is a file that exists in the site
        for ref in (
            "static/vendor/bootstrap-4.3.1/dist/css/bootstrap.min.css",
            "static/images/logo-long.png",
        ):
            assert _resolved(pages[name], prefix + ref).is_file()
        # SRI and crossorigin would make the browser refuse a file:// script: dropped
        assert "integrity=" not in text and "crossorigin" not in text
        assert "https://greatexpectations.io" in text  # a link is not a load: left alone
        assert "data:image/svg+xml" in text
        assert "newsletter" not in text  # GX's fixed footer hid the last result row
        assert 'title="Failed" aria-label="Failed" class="fas fa-times text-danger"' in text
    # the fonts font-awesome's stylesheet loads are there, beside it
    webfonts = site / "static" / "vendor" / "fortawesome-fontawesome-free-6.6.0" / "webfonts"
    assert (webfonts / "fa-solid-900.woff2").is_file()


@pytest.mark.parametrize(
    "extra, url",
    [
        (
            '<script src="https://cdn.example.org/new-lib@2.js"></script>',
            "https://cdn.example.org/new-lib@2.js",
        ),
        ('<link rel="stylesheet" href="//fonts.example.org/css">', "//fonts.example.org/css"),
        ("<style>@import 'http://example.org/theme.css';</style>", "http://example.org/theme.css"),
        ('<img srcset="a.png 1x, https://img.example.org/b.png 2x">', "https://img.example.org/b.png"),
        (
            '<div style="background: url(https://img.example.org/bg.png)"></div>',
            "https://img.example.org/bg.png",
        ),
    ],
)
def test_an_external_load_that_is_not_vendored_fails_loudly(tmp_path: Path, extra: str, url: str):
    site = tmp_path / "data_docs"
    _site(site, extra)
    with pytest.raises(dd.OfflineDocsError) as err:
        dd.make_offline(site)
    assert url in str(err.value) and "not vendored" in str(err.value)


def test_a_site_stylesheet_is_rewritten_relative_to_itself(tmp_path: Path):
    site = tmp_path / "data_docs"
    _site(site)
    css = site / "static" / "styles" / "data_docs_default_styles.css"
    css.parent.mkdir(parents=True)
    css.write_text(f".navbar-brand a {{ background: url('{DARK_LOGO}'); }}")
    dd.make_offline(site)
    assert css.read_text() == ".navbar-brand a { background: url('../images/logo-long.png'); }"


def test_a_site_file_loaded_from_the_wrong_depth_is_re_anchored(tmp_path: Path):
    """GX 1.24's favicon link on a validation result page climbs one directory too few."""
    site = tmp_path / "data_docs"
    pages = _site(site, '<link rel="shortcut icon" href="../../../static/images/favicon.ico"/>')
    (site / "static" / "images" / "favicon.ico").write_bytes(b"\0")
    dd.make_offline(site)
    assert 'href="../../../../static/images/favicon.ico"' in pages["result"].read_text()


def test_the_index_links_the_ig_summary_once(tmp_path: Path):
    site = tmp_path / "data_docs"
    pages = _site(site)
    dd.make_offline(site)
    dd.make_offline(site)  # idempotent: rebuilding a site does not add a second link
    text = pages["index"].read_text()
    assert text.count(dd.IG_LINK_TEXT) == 1
    assert f'href="../dq/index.html">{dd.IG_LINK_TEXT}</a>' in text
    assert text.index(dd.IG_LINK_TEXT) < text.index('<div class="container-fluid pt-4">')  # above results
    assert dd.IG_LINK_TEXT not in pages["result"].read_text()


def test_a_vendored_file_that_differs_from_the_manifest_is_refused(tmp_path: Path):
    assets = tmp_path / "assets"
    manifest = dd.load_manifest()
    (assets).mkdir()
    (assets / "MANIFEST.json").write_text(json.dumps(manifest))
    for entry in manifest["assets"] + manifest["referenced_by_css"]:
        dest = assets / entry["file"]
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes((dd.ASSETS_DIR / entry["file"]).read_bytes())
    victim = assets / manifest["assets"][0]["file"]
    victim.write_bytes(victim.read_bytes() + b"/* changed */")
    with pytest.raises(dd.OfflineDocsError, match="differs from MANIFEST.json"):
        dd.copy_assets(tmp_path / "site", assets)


def test_is_external():
    assert dd.is_external("https://a.example/x") and dd.is_external("//a.example/x")
    assert dd.is_external("HTTP://A.EXAMPLE/x")
    for local in ("static/x.css", "../x.css", "file:///tmp/x", "data:,x", "#top", "/abs/x"):
        assert not dd.is_external(local), local


def _vendor_script():
    path = REPO / "scripts" / "vendor_data_docs_assets.py"
    spec = importlib.util.spec_from_file_location("vendor_data_docs_assets", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_manifest_covers_every_load_in_the_installed_gx_templates():
    """A GX upgrade that loads a new CDN file fails here (and the build would fail on it)."""
    import great_expectations

    manifest = dd.load_manifest()
    assert manifest["great_expectations"] == great_expectations.__version__
    vendored = {a["url"] for a in manifest["assets"]}
    wanted, sri = _vendor_script().template_urls()
    assert len(wanted) >= 16
    missing = [u for u in wanted if u not in vendored and not any(u.startswith(p) for p in dd.GX_LOCAL)]
    assert missing == []
    # Where GX pins a file by Subresource Integrity, the vendored copy is that exact file.
    assert set(sri) == {POPPER, "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js"}
    files = {a["url"]: dd.ASSETS_DIR / a["file"] for a in manifest["assets"]}
    for url, (algo, digest) in sri.items():
        assert base64.b64encode(hashlib.new(algo, files[url].read_bytes()).digest()).decode() == digest


def test_vendored_files_are_pinned_hashed_and_small():
    manifest = dd.load_manifest()
    entries = manifest["assets"] + manifest["referenced_by_css"]
    for entry in entries:
        path = dd.ASSETS_DIR / entry["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], entry["file"]
        assert entry["version"][0].isdigit() and "^" not in entry["version"], entry  # exact pins
    assert sum((dd.ASSETS_DIR / e["file"]).stat().st_size for e in entries) < 3 * 2**20


def test_every_vendored_file_is_committed_not_ignored():
    """A fresh clone must carry every vendored file: .gitignore's ``build/`` once hid vega's
    ``build/*.min.js`` (only found by `make run` on a fresh clone, whose gate then refused to
    publish). ``git check-ignore`` on each path fails this test instead."""
    import shutil
    import subprocess

    if shutil.which("git") is None or not (dd.ASSETS_DIR.parents[1] / ".git").exists():
        pytest.skip("not a git checkout")
    manifest = dd.load_manifest()
    paths = [str(dd.ASSETS_DIR / e["file"]) for e in manifest["assets"] + manifest["referenced_by_css"]]
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *paths], capture_output=True, text=True, cwd=dd.ASSETS_DIR
    ).stdout.split()
    assert ignored == [], f"ignored by .gitignore, so missing from a clone: {ignored}"
