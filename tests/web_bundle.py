"""The browser test's web app, built the way a web developer builds one: Uppy from npm at the
versions tests/web/package-lock.json pins, and the web-apps guide's own upload modules, bundled into one
script by esbuild.

npm installs once per lock file into .tools/web/deps-<hash>/ (ignored by git), and the bundle is
kept beside it keyed by what goes into it, so a later run reuses both in milliseconds. Node and
npm come from Debian (scripts/install_node.sh) when missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from cli.stack import PROJECT_ROOT
from doc_examples import doc_example

WEB = PROJECT_ROOT / "tests" / "web"
CACHE = PROJECT_ROOT / ".tools" / "web"
PACKAGE_FILES = ("package.json", "package-lock.json", ".npmrc")
GLOBAL_NAME = "WebApp"
# The guide's modules the page uses, and what the bundle exposes on window.WebApp.
ENTRY = """\
export { default as Uppy } from "@uppy/core";
export { default as AwsS3 } from "@uppy/aws-s3";
export { imgpipeUppy } from "./uppy.js";
export { uploadWithFetch } from "./fetch.js";
"""
SOURCES = {"entry.js": ENTRY, "uppy.js": doc_example("uppy.js"), "fetch.js": doc_example("fetch.js")}


def pinned_versions() -> dict[str, str]:
    manifest = json.loads((WEB / "package.json").read_text())
    return {**manifest["dependencies"], **manifest["devDependencies"]}


def web_app_bundle() -> Path:
    """The bundled script, built now unless a run before built the same one."""
    deps = _installed_dependencies()
    bundle = deps / f"web-app-{_digest(*SOURCES.values())}.js"
    if bundle.exists():
        return bundle
    with tempfile.TemporaryDirectory(dir=deps, prefix="src-") as source_dir:
        for name, text in SOURCES.items():
            Path(source_dir, name).write_text(text)
        partial = bundle.with_suffix(f".{os.getpid()}.tmp")
        _run([str(deps / "node_modules" / ".bin" / "esbuild"), str(Path(source_dir, "entry.js")), "--bundle",
              "--format=iife", f"--global-name={GLOBAL_NAME}", "--target=es2020", f"--outfile={partial}",
              "--log-level=warning"], cwd=deps)
        partial.replace(bundle)
    return bundle


def _installed_dependencies() -> Path:
    """`npm ci` of the pinned packages, once per lock file; a half-done install is never used."""
    deps = CACHE / f"deps-{_digest(*((WEB / name).read_text() for name in PACKAGE_FILES))}"
    if (deps / "node_modules").is_dir():
        return deps
    subprocess.run([str(PROJECT_ROOT / "scripts" / "install_node.sh")], check=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=CACHE, prefix="installing-"))
    try:
        for name in PACKAGE_FILES:
            shutil.copy(WEB / name, staging / name)
        _run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=staging)
        staging.rename(deps)
    except OSError:
        if not (deps / "node_modules").is_dir():  # not another run finishing the same install first
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return deps


def _run(argv: list[str], cwd: Path) -> None:
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


def _digest(*texts: str) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(hashlib.sha256(text.encode()).digest())
    return digest.hexdigest()[:16]
