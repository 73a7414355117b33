"""Tesseract OCR and a Hangul font from Debian's packages, unpacked without installing them.

``install_tesseract`` fetches the ``.deb`` files with ``apt-get download`` and unpacks them
with ``dpkg -x`` into a cache folder (by default ``.local/tesseract/`` of the checkout the
package is installed from, editable), so nothing is installed system-wide. Shared libraries the binary still lacks
on the machine (``ldd`` says "not found") are fetched the same way, from the Debian package
named after their SONAME. The font is only for tests that render Korean text.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

DEFAULT_DIR = Path(__file__).resolve().parents[2] / ".local" / "tesseract"
TESSERACT_PACKAGES = ("tesseract-ocr", "libtesseract5", "liblept5", "tesseract-ocr-eng", "tesseract-ocr-kor")
# The smallest Debian font with Hangul and Latin glyphs (1.6 MB TrueType, GPL-2).
FONT_PACKAGE = "fonts-lexi-gulim"
LANGUAGES = ("eng", "kor")
_STAMP = ".installed"
_MAX_LIBRARY_ROUNDS = 4
# SONAMEs whose Debian package does not follow the policy name (libfoo.so.N -> libfooN).
_LIBRARY_PACKAGE_EXCEPTIONS = {
    "libjpeg.so.62": "libjpeg62-turbo",
    "libxml2.so.2": "libxml2",
    "libicuuc.so.72": "libicu72",
    "libicudata.so.72": "libicu72",
    "libssl.so.3": "libssl3",
    "libcrypto.so.3": "libssl3",
    "libbrotlidec.so.1": "libbrotli1",
    "libbrotlicommon.so.1": "libbrotli1",
    "libldap-2.5.so.0": "libldap-2.5-0",
    "liblber-2.5.so.0": "libldap-2.5-0",
    "libgcc_s.so.1": "libgcc-s1",
}
_NOT_INSTALLED = "Tesseract is not installed in {root}: run `make model-repository`"


def install_tesseract(root: Path = DEFAULT_DIR) -> Path:
    """Unpack Tesseract (English and Korean) and the Hangul font into ``root`` once; returns ``root``."""
    packages = (*TESSERACT_PACKAGES, FONT_PACKAGE)
    stamp = root / _STAMP
    if stamp.exists() and stamp.read_text().split() == list(packages):
        return root
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        raise RuntimeError("installing Tesseract needs a Debian-based machine (apt-get and dpkg)")
    shutil.rmtree(root, ignore_errors=True)
    tree = root / "tree"
    tree.mkdir(parents=True)
    _unpack(packages, root / "downloads", tree)
    missing = _missing_libraries(tree)
    for _ in range(_MAX_LIBRARY_ROUNDS):  # a fetched library may need another one
        if not missing:
            break
        _unpack(tuple(sorted({_library_package(name) for name in missing})), root / "downloads", tree)
        missing = _missing_libraries(tree)
    if missing:
        raise RuntimeError(f"Tesseract in {tree} still lacks shared libraries: {', '.join(missing)}")
    shutil.rmtree(root / "downloads")
    _check_languages(tree)
    stamp.write_text("\n".join(packages) + "\n")
    return root


def tesseract_command(root: Path = DEFAULT_DIR) -> tuple[str, dict[str, str]]:
    """The unpacked ``tesseract`` executable and the environment to run it with."""
    return _command(_installed_tree(root))


def _command(tree: Path) -> tuple[str, dict[str, str]]:
    libraries = [str(path) for path in sorted((tree / "usr" / "lib").glob("*-linux-gnu"))]
    inherited = os.environ.get("LD_LIBRARY_PATH")
    env = {
        **os.environ,
        "LD_LIBRARY_PATH": ":".join([*libraries, *([inherited] if inherited else [])]),
        "TESSDATA_PREFIX": str(_tessdata(tree)),
        # One line crop is far too small for OpenMP threads to pay off; they only contend.
        "OMP_THREAD_LIMIT": "1",
    }
    return str(tree / "usr" / "bin" / "tesseract"), env


def korean_font_path(root: Path = DEFAULT_DIR) -> Path:
    """A TrueType font with Hangul and Latin glyphs, for rendering test images."""
    fonts = sorted((_installed_tree(root) / "usr" / "share" / "fonts").rglob("*.ttf"))
    if not fonts:
        raise FileNotFoundError(f"no TrueType font from {FONT_PACKAGE} in {root}: run `make model-repository`")
    return fonts[0]


def _installed_tree(root: Path) -> Path:
    if not (root / _STAMP).exists():
        raise FileNotFoundError(_NOT_INSTALLED.format(root=root))
    return root / "tree"


def _unpack(packages: tuple[str, ...], downloads: Path, tree: Path) -> None:
    downloads.mkdir(parents=True, exist_ok=True)
    for deb in downloads.glob("*.deb"):
        deb.unlink()
    _download(packages, downloads)
    for deb in sorted(downloads.glob("*.deb")):
        _run(["dpkg", "-x", str(deb), str(tree)])


def _download(packages: tuple[str, ...], downloads: Path) -> None:
    command = ["apt-get", "download", "-q", *packages]
    result = subprocess.run(command, cwd=downloads, capture_output=True, encoding="utf-8")
    if result.returncode != 0:
        # A machine whose package lists were never fetched (or are stale) knows no package, or an old version.
        _run(["apt-get", "update", "-q"])
        result = subprocess.run(command, cwd=downloads, capture_output=True, encoding="utf-8")
    if result.returncode != 0:
        raise RuntimeError(f"`{' '.join(command)}` failed:\n{result.stderr.strip()}")


def _missing_libraries(tree: Path) -> list[str]:
    binary, env = _command(tree)
    output = _run(["ldd", binary], env=env)
    return sorted(set(re.findall(r"^\s*(\S+) => not found", output, flags=re.MULTILINE)))


def _library_package(soname: str) -> str:
    if soname in _LIBRARY_PACKAGE_EXCEPTIONS:
        return _LIBRARY_PACKAGE_EXCEPTIONS[soname]
    match = re.fullmatch(r"(lib[\w+.-]+?)\.so\.(\d+(?:\.\d+)*)", soname)
    if match is None:
        raise RuntimeError(f"cannot tell the Debian package of the shared library {soname}")
    name, version = match.group(1).lower().replace("_", "-"), match.group(2)
    return f"{name}-{version}" if name[-1].isdigit() else f"{name}{version}"


def _tessdata(tree: Path) -> Path:
    found = sorted((tree / "usr" / "share" / "tesseract-ocr").glob("*/tessdata"))
    if not found:
        raise FileNotFoundError(f"no tessdata folder under {tree}")
    return found[-1]


def _check_languages(tree: Path) -> None:
    binary, env = _command(tree)
    languages = _run([binary, "--list-langs"], env=env).split()
    lacking = [language for language in LANGUAGES if language not in languages]
    if lacking:
        raise RuntimeError(f"Tesseract in {tree} lacks the languages {', '.join(lacking)}")


def _run(command: list[str], env: dict[str, str] | None = None) -> str:
    result = subprocess.run(command, capture_output=True, encoding="utf-8", env=env)
    if result.returncode != 0:
        raise RuntimeError(f"`{' '.join(command)}` failed:\n{(result.stderr or result.stdout).strip()}")
    return result.stdout
