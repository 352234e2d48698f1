"""(Re)vendor the files Great Expectations' Data Docs load from CDNs, from pinned npm packages.

GX 1.24.1's page templates load Bootstrap, jQuery, bootstrap-table, font-awesome, vega and a
few more from unpkg / jsDelivr / cdnjs / bootstrapcdn. Offline (an NHS trust's pipeline host,
a laptop on a train) the pages then render unstyled, the index's results table stays empty (it
is filled by bootstrap-table) and the Status column's icons (font-awesome) are blank.
``mhsds_pipeline.quality.data_docs.make_offline`` points every page at the copies made here.

Maintainer tool, needs the npm registry (``npm pack``); not run by tests or ``make``:

    .venv/bin/python scripts/vendor_data_docs_assets.py

It fetches each package at the pinned version below, copies the exact file each CDN URL serves
(plus the fonts its CSS loads), checks the templates' Subresource Integrity hashes where GX
gives one, refuses to finish if the installed GX templates load an external URL not listed
here, and rewrites ``expectations/data_docs_assets/MANIFEST.json``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))

from mhsds_pipeline.quality.data_docs import (  # noqa: E402
    ASSETS_DIR,
    GX_LOCAL,
    external_resources,
    vendor_dir_name,
)

#: CDN URL in GX 1.24.1's templates -> (npm package, pinned version, file in the package).
#: ``vega@5`` / ``vega-lite@5`` / ``vega-embed@6`` are floating on jsDelivr (newest 5.x / 6.x,
#: the package's ``jsdelivr`` entry point): pinned here to the newest of each when vendored.
ASSETS: dict[str, tuple[str, str, str]] = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": (
        "bootstrap",
        "4.3.1",
        "dist/css/bootstrap.min.css",
    ),
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": (
        "bootstrap",
        "4.3.1",
        "dist/js/bootstrap.min.js",
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": (
        "bootstrap-table",
        "1.19.1",
        "dist/bootstrap-table.min.css",
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": (
        "bootstrap-table",
        "1.19.1",
        "dist/bootstrap-table.min.js",
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js": (
        "bootstrap-table",
        "1.19.1",
        "dist/extensions/filter-control/bootstrap-table-filter-control.min.js",
    ),
    # GX's index page asks for 1.19.0's minified filter-control CSS, its other pages for the
    # unminified one: both are what the pages load, so both are kept.
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css": (
        "bootstrap-table",
        "1.19.0",
        "dist/extensions/filter-control/bootstrap-table-filter-control.min.css",
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css": (
        "bootstrap-table",
        "1.19.0",
        "dist/extensions/filter-control/bootstrap-table-filter-control.css",
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css": (
        "bootstrap-datepicker",
        "1.9.0",
        "dist/css/bootstrap-datepicker.min.css",
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js": (
        "bootstrap-datepicker",
        "1.9.0",
        "dist/js/bootstrap-datepicker.min.js",
    ),
    # GX loads the unminified stylesheet (863 KiB); the package's minified build of the same
    # stylesheet is vendored in its place.
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css": (
        "@forevolve/bootstrap-dark",
        "1.1.0",
        "dist/css/bootstrap-prefers-dark.min.css",
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": (
        "@fortawesome/fontawesome-free",
        "6.6.0",
        "css/all.min.css",
    ),
    "https://code.jquery.com/jquery-3.7.1.min.js": ("jquery", "3.7.1", "dist/jquery.min.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": (
        "popper.js",
        "1.12.9",
        "dist/umd/popper.min.js",
    ),
    "https://cdn.jsdelivr.net/npm/vega@5": ("vega", "5.33.1", "build/vega.min.js"),
    "https://cdn.jsdelivr.net/npm/vega-lite@5": ("vega-lite", "5.23.0", "build/vega-lite.min.js"),
    "https://cdn.jsdelivr.net/npm/vega-embed@6": ("vega-embed", "6.29.0", "build/vega-embed.min.js"),
}

TEMPLATES = ("render/view/templates", "render/view/static/styles")
CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")]+?)['\"]?\s*\)")
INTEGRITY = re.compile(r"""<script[^>]*\bsrc="([^"]+)"[^>]*\bintegrity="(sha\d+)-([^"]+)\"""")


def gx_root() -> Path:
    import great_expectations

    return Path(great_expectations.__file__).parent


def template_urls() -> tuple[set[str], dict[str, tuple[str, str]]]:
    """Resource URLs GX's templates load, and the SRI hashes they give (URL -> (algo, b64))."""
    urls: set[str] = set()
    sri: dict[str, tuple[str, str]] = {}
    for sub in TEMPLATES:
        for path in sorted((gx_root() / sub).iterdir()):
            text = path.read_text(errors="replace")
            if path.suffix == ".css":
                text = f"<style>{text}</style>"
            # Jinja expressions are not URLs: blank them so the scan sees only literal markup.
            text = re.sub(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", "", text, flags=re.S)
            urls |= set(external_resources(text))
            sri.update({m[0]: (m[1], m[2]) for m in INTEGRITY.findall(text)})
    # top_navbar.j2 builds the logo URL from a variable: the literal prefix is what it loads.
    urls |= {u for u in GX_LOCAL if u.endswith(".png")}
    return urls, sri


def npm_pack(package: str, version: str, work: Path) -> Path:
    """The unpacked npm tarball of ``package@version`` (its ``package/`` directory)."""
    dest = work / vendor_dir_name(package, version)
    if dest.exists():
        return dest / "package"
    dest.mkdir(parents=True)
    out = subprocess.run(
        ["npm", "pack", f"{package}@{version}", "--pack-destination", str(dest), "--json"],
        check=True,
        capture_output=True,
        text=True,
    )
    tgz = dest / json.loads(out.stdout)[0]["filename"]
    with tarfile.open(tgz) as tar:
        tar.extractall(dest, filter="data")
    return dest / "package"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def vendor(out_dir: Path, work: Path) -> dict:
    wanted, sri = template_urls()
    unknown = sorted(u for u in wanted if u not in ASSETS and not any(u.startswith(p) for p in GX_LOCAL))
    if unknown:
        raise SystemExit(f"GX's templates load URLs with no pinned package here: {unknown}")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    assets, fonts = [], []
    for url, (package, version, rel) in sorted(ASSETS.items()):
        src_root = npm_pack(package, version, work)
        dirname = vendor_dir_name(package, version)
        target = out_dir / dirname / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src_root / rel, target)
        if url in sri:
            algo, digest = sri[url]
            got = base64.b64encode(hashlib.new(algo, target.read_bytes()).digest()).decode()
            if got != digest:
                raise SystemExit(f"{url}: {package}@{version}/{rel} does not match GX's integrity hash")
        assets.append(
            {
                "url": url,
                "package": package,
                "version": version,
                "license": json.loads((src_root / "package.json").read_text()).get("license"),
                "package_path": rel,
                "file": f"{dirname}/{rel}",
                "sha256": sha256(target),
            }
        )
        if rel.endswith(".css"):  # fonts and images the stylesheet loads, relative to it
            for ref in sorted(set(CSS_URL.findall(target.read_text()))):
                if ref.startswith(("data:", "#")):
                    continue
                ref_rel = (Path(rel).parent / ref.split("?")[0].split("#")[0]).as_posix()
                norm = Path(src_root / ref_rel).resolve().relative_to(src_root.resolve()).as_posix()
                font_target = out_dir / dirname / norm
                font_target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src_root / norm, font_target)
                fonts.append(
                    {
                        "referenced_by": f"{dirname}/{rel}",
                        "package": package,
                        "version": version,
                        "package_path": norm,
                        "file": f"{dirname}/{norm}",
                        "sha256": sha256(font_target),
                    }
                )
    for dirname in sorted({a["file"].split("/")[0] for a in assets}):
        package_root = next(
            npm_pack(a["package"], a["version"], work) for a in assets if a["file"].startswith(dirname + "/")
        )
        for name in ("LICENSE", "LICENSE.txt", "LICENSE.md"):
            if (package_root / name).exists():
                shutil.copyfile(package_root / name, out_dir / dirname / "LICENSE")
                break
    unique_fonts = {f["file"]: f for f in fonts}
    manifest = {
        "about": "Files GX Data Docs load from CDNs, vendored from pinned npm packages so the site "
        "works offline. Rewritten by scripts/vendor_data_docs_assets.py; read by "
        "mhsds_pipeline.quality.data_docs.",
        "great_expectations": _gx_version(),
        "assets": assets,
        "referenced_by_css": sorted(unique_fonts.values(), key=lambda f: f["file"]),
        "gx_local": [{"url_prefix": k, "replacement": v} for k, v in sorted(GX_LOCAL.items())],
    }
    (out_dir / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _gx_version() -> str:
    import great_expectations

    return great_expectations.__version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ASSETS_DIR)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gx-assets-") as tmp:
        manifest = vendor(args.out, Path(tmp))
    files = [args.out / a["file"] for a in manifest["assets"] + manifest["referenced_by_css"]]
    total = sum(f.stat().st_size for f in files)
    print(f"vendored {len(files)} files, {total / 2**20:.2f} MiB, into {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
