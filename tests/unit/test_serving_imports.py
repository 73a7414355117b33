"""Serving code (the four services, the console and what Triton's models import) never loads torch or transformers."""

import subprocess
import sys

SERVING_MODULES = (
    "services.ingest.__main__",
    "services.caption.__main__",
    "services.moderation.__main__",
    "services.indexing.__main__",
    "services.console.__main__",
    # What model_repository/*/model.py import, besides Triton's own module.
    "captioner.images",
    "captioner.keywords",
    "captioner.runtime",
    "captioner.tensorrt",
    "captioner.vocabulary",
    "captioning_common.images",
    "perception.classification",
    "perception.composition",
    "perception.detection",
    "perception.grounded",
    "perception.routing",
    "perception.serving",
    "perception.tesseract",
    "perception.text_reading",
)


def test_serving_modules_import_no_torch() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {SERVING_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout
