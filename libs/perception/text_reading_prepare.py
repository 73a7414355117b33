"""Prepares the ``text_reader`` model: PP-OCRv4 graphs from a pinned wheel, and Tesseract.

The wheel is downloaded, never installed: it declares the GUI build of OpenCV, which
would clash with the headless one the project uses. Only the two ONNX graphs are taken
from it; the recogniser's character dictionary is stored in its own ONNX metadata.
"""

from __future__ import annotations

from pathlib import Path

from perception.tesseract import install_tesseract
from perception.text_reading import MODEL_FILES
from perception.wheels import extract_members, fetch_wheel

RAPIDOCR_VERSION = "1.4.4"


def prepare_text_reader(repository: Path, wheels: Path) -> None:
    """Write the PP-OCRv4 graphs into ``repository/text_reader/1/`` and install Tesseract (once)."""
    target = repository / "text_reader" / "1"
    if not all((target / name).exists() for name in MODEL_FILES):
        wheel = fetch_wheel("rapidocr-onnxruntime", RAPIDOCR_VERSION, wheels)
        extract_members(wheel, {f"rapidocr_onnxruntime/models/{name}": target / name for name in MODEL_FILES})
    install_tesseract()
