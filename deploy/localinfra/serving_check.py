"""``python -m localinfra.serving_check``: import what serves, in the environment that serves it.

``services`` imports the entry module of every service (each ``services.<name>``
with a ``__main__``); ``models REPOSITORY`` imports
every module the python-backend models of a Triton model repository import (read from
their ``model.py`` files, Triton's own ``triton_python_backend_utils`` aside);
``--tesseract DIR`` also runs the unpacked Tesseract. Each check fails when an import
fails or when torch, transformers or another training library got loaded. It uses the
standard library only, so it runs in the slim environments and in the images' builds.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import subprocess
import sys
import time
from pathlib import Path

TRAINING_MODULES = frozenset({"torch", "transformers", "sentence_transformers", "tensorflow", "jax"})
TRITON_MODULE = "triton_python_backend_utils"  # provided by Triton's python backend stub


def service_modules() -> list[str]:
    """``services.<name>.__main__`` of every service package installed."""
    import services  # a namespace package, as are its services: look for their __main__.py

    folders = (Path(entry) for entry in services.__path__ if Path(entry).is_dir())
    names = {main.parent.name for folder in folders for main in folder.glob("*/__main__.py")}
    return [f"services.{name}.__main__" for name in sorted(names)]


def model_files(repository: Path) -> list[Path]:
    """The ``model.py`` of every version of every model in ``repository``."""
    files = sorted(repository.glob("*/*/model.py"))
    if not files:
        raise FileNotFoundError(f"no python-backend model (<model>/<version>/model.py) in {repository}")
    return files


def model_imports(repository: Path) -> list[str]:
    """The modules the models' ``model.py`` files import, standard library and Triton's module excepted."""
    modules: set[str] = set()
    for path in model_files(repository):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module)
    return sorted(m for m in modules if m.split(".")[0] not in sys.stdlib_module_names and m != TRITON_MODULE)


def import_all(modules: list[str]) -> list[str]:
    """Import ``modules``; returns the training libraries that got loaded (none expected)."""
    for name in modules:
        importlib.import_module(name)
    return sorted({name.split(".")[0] for name in sys.modules} & TRAINING_MODULES)


def check_tesseract(root: Path) -> str:
    """Run the Tesseract unpacked in ``root`` (its libraries must load here); returns its languages."""
    from perception.tesseract import LANGUAGES, tesseract_command

    binary, env = tesseract_command(root)
    result = subprocess.run([binary, "--list-langs"], capture_output=True, text=True, env=env)
    languages = result.stdout.split()
    if result.returncode != 0 or not set(LANGUAGES) <= set(languages):
        raise RuntimeError(f"Tesseract in {root} does not run here: {(result.stderr or result.stdout).strip()}")
    return " ".join(language for language in languages if language in LANGUAGES)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localinfra.serving_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("services", "models"), help="the services' modules, or a model repository's")
    parser.add_argument("repository", nargs="?", type=Path, help="the Triton model repository (with `models`)")
    parser.add_argument("--tesseract", type=Path, help="also run the Tesseract unpacked in this folder")
    args = parser.parse_args(argv)
    if args.what == "models" and args.repository is None:
        parser.error("`models` needs the model repository")
    started = time.monotonic()
    modules = service_modules() if args.what == "services" else model_imports(args.repository)
    loaded = import_all(modules)
    if loaded:
        print(f"{args.what}: importing them loaded {', '.join(loaded)}", file=sys.stderr)
        return 1
    print(f"{args.what}: {len(modules)} modules imported in {time.monotonic() - started:.1f} s, no training library loaded")
    if args.tesseract:
        print(f"tesseract: runs, languages {check_tesseract(args.tesseract)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
