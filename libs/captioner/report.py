"""``python -m captioner evaluate``: teacher vs student, written to JSON and the model card."""

from __future__ import annotations

import json
import platform
import tempfile
from functools import partial
from pathlib import Path

import numpy as np
import torch

from captioner.dataset import load_coco, load_pixels
from captioner.decoding import caption_batch
from captioner.evaluation import agreement, captions_per_second, evaluate_split
from captioner.export import export_onnx, quantize_int8
from captioner.modeling import load_model, parameter_count
from captioner.runtime import OnnxCaptioner
from captioner.tokenizer import load_tokenizer

SPLITS = ("test", "novel")
LANGUAGES = ("en", "ko")
CARD_START, CARD_END = "<!-- evaluation:start -->", "<!-- evaluation:end -->"


def run_evaluation(
    data: Path, teacher_dir: Path, student_dir: Path, report_path: Path, card_path: Path | None,
    limit: int | None = None, speed_seconds: float = 8.0,
) -> dict:
    """Evaluate both models on every split; returns and writes the report."""
    torch.manual_seed(0)
    splits = {split: load_coco(data / f"{split}.json")[:limit] for split in SPLITS}
    models = {}
    for name, directory in (("teacher", teacher_dir), ("student", student_dir)):
        model = load_model(directory)
        models[name] = (model, load_tokenizer(directory))
    size = models["student"][0].config.encoder.image_size
    pixels = {split: load_pixels(examples, size) for split, examples in splits.items()}

    report: dict = {"machine": {"cpu_count": torch.get_num_threads(), "platform": platform.platform()}, "quality": {}, "speed": {}}
    for name, (model, tokenizer) in models.items():
        caption = partial(caption_batch, model, tokenizer)
        report["quality"][name] = {split: evaluate_split(caption, splits[split], pixels[split], list(LANGUAGES)) for split in SPLITS}
        report.setdefault("parameters", {})[name] = parameter_count(model)

    with tempfile.TemporaryDirectory() as tmp:
        exported = {name: export_onnx(directory, Path(tmp) / name) for name, directory in (("teacher", teacher_dir), ("student", student_dir))}
        int8 = quantize_int8(exported["student"], Path(tmp) / "student-int8")
        runtimes = {name: OnnxCaptioner(path) for name, path in exported.items()} | {"student-int8": OnnxCaptioner(int8)}
        sample = pixels["test"]
        for name, (model, tokenizer) in models.items():
            for batch in (1, 8):
                report["speed"].setdefault(f"{name} pytorch", {})[f"batch_{batch}"] = captions_per_second(
                    partial(caption_batch, model, tokenizer), sample, batch, speed_seconds
                )
        for name, runtime in runtimes.items():
            for batch in (1, 8):
                report["speed"].setdefault(f"{name} onnxruntime", {})[f"batch_{batch}"] = captions_per_second(runtime.caption, sample, batch, speed_seconds)
        languages = [LANGUAGES[i % 2] for i in range(len(sample))]
        student, tokenizer = models["student"]
        reference = partial(caption_batch, student, tokenizer)
        report["export_agreement"] = {
            "student onnx fp32 vs pytorch": agreement(reference, runtimes["student"].caption, sample, languages),
            "student onnx int8 vs pytorch": agreement(reference, runtimes["student-int8"].caption, sample, languages),
        }
        report["quality"]["student-int8"] = {"test": evaluate_split(runtimes["student-int8"].caption, splits["test"], sample, list(LANGUAGES))}

    report["acceptance"] = _acceptance(report)
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    if card_path is not None:
        _update_card(card_path, report)
    return report


def _acceptance(report: dict) -> dict:
    quality, speed = report["quality"], report["speed"]
    student_en = quality["student"]["test"]["en"]["all"]
    student_ko = quality["student"]["test"]["ko"]["all"]
    teacher_cider = np.mean([quality["teacher"]["test"][lang]["all"]["cider"] for lang in LANGUAGES])
    student_cider = np.mean([quality["student"]["test"][lang]["all"]["cider"] for lang in LANGUAGES])
    return {
        "student_en_binding_f1": student_en["binding_f1"],
        "student_ko_minus_en_binding_f1": round(student_ko["binding_f1"] - student_en["binding_f1"], 4),
        "parameter_ratio_student_to_teacher": round(report["parameters"]["student"] / report["parameters"]["teacher"], 4),
        "speedup_batch_8_onnxruntime": round(speed["student onnxruntime"]["batch_8"] / speed["teacher onnxruntime"]["batch_8"], 2),
        "speedup_batch_8_pytorch": round(speed["student pytorch"]["batch_8"] / speed["teacher pytorch"]["batch_8"], 2),
        "cider_student_relative_to_teacher": round(float(student_cider / teacher_cider), 4),
    }


def markdown_tables(report: dict) -> str:
    """The model card's evaluation section."""
    lines = ["| Model | Split | Lang | Binding F1 | Count acc. | Keyword P | Keyword R | BLEU-4 | CIDEr |", "|---|---|---|---|---|---|---|---|---|"]
    for model, splits in report["quality"].items():
        for split, languages in splits.items():
            for language, entry in languages.items():
                m = entry["all"]
                lines.append(
                    f"| {model} | {split} | {language} | {m['binding_f1']:.3f} | {m['count_accuracy']:.3f} | "
                    f"{m['keyword_precision']:.3f} | {m['keyword_recall']:.3f} | {m['bleu4']:.3f} | {m['cider']:.3f} |"
                )
    lines += ["", "Binding F1 by style (English / Korean):", "", "| Model | Split | photo | illustration | lineart |", "|---|---|---|---|---|"]
    for model, splits in report["quality"].items():
        for split, languages in splits.items():
            cells = []
            for style in ("photo", "illustration", "lineart"):
                values = [languages[lang].get(style, {}).get("binding_f1") for lang in LANGUAGES]
                cells.append(" / ".join("-" if v is None else f"{v:.3f}" for v in values))
            lines.append(f"| {model} | {split} | " + " | ".join(cells) + " |")
    lines += ["", "Captions per second on this machine (greedy, English):", "", "| Model and runtime | batch 1 | batch 8 |", "|---|---|---|"]
    for name, values in report["speed"].items():
        lines.append(f"| {name} | {values['batch_1']} | {values['batch_8']} |")
    lines += ["", "| Check | Value |", "|---|---|"]
    for key, value in {**report["acceptance"], **report["export_agreement"], **{f"parameters {k}": f"{v:,}" for k, v in report["parameters"].items()}}.items():
        lines.append(f"| {key} | {value} |")
    return "\n".join(lines)


def _update_card(card_path: Path, report: dict) -> None:
    text = card_path.read_text() if card_path.exists() else f"{CARD_START}\n{CARD_END}\n"
    head, _, rest = text.partition(CARD_START)
    _, _, tail = rest.partition(CARD_END)
    card_path.write_text(f"{head}{CARD_START}\n{markdown_tables(report)}\n{CARD_END}{tail}")
