"""Tesseract as unpacked from Debian's packages by `make model-repository` (fails, not skips, when missing)."""

import subprocess
from pathlib import Path

import pytest

from perception.tesseract import _library_package, korean_font_path, tesseract_command


@pytest.mark.parametrize(("soname", "package"), [
    ("libwebpmux.so.3", "libwebpmux3"), ("libopenjp2.so.7", "libopenjp2-7"), ("libarchive.so.13", "libarchive13"),
    ("libbz2.so.1.0", "libbz2-1.0"), ("libjpeg.so.62", "libjpeg62-turbo"), ("libgcc_s.so.1", "libgcc-s1"),
])
def test_a_missing_library_is_fetched_from_the_package_named_after_it(soname, package):
    assert _library_package(soname) == package


def test_tesseract_runs_with_english_and_korean():
    try:
        binary, env = tesseract_command()
    except FileNotFoundError as exc:  # names `make model-repository`
        pytest.fail(str(exc))
    result = subprocess.run([binary, "--list-langs"], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert {"eng", "kor"} <= set(result.stdout.split())
    assert korean_font_path().suffix == ".ttf"


def test_a_folder_without_tesseract_names_the_make_target(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="make model-repository"):
        tesseract_command(tmp_path)
    with pytest.raises(FileNotFoundError, match="make model-repository"):
        korean_font_path(tmp_path)
