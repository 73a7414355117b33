"""``python -m captioner``: generate data, train, distil, evaluate and export the captioner."""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from pathlib import Path

COMMANDS = "generate, train, distill, evaluate, export"


def _generate(args: argparse.Namespace) -> None:
    from captioner.dataset import generate_split

    for split, count, offset in (("train", args.train, 0), ("test", args.test, 1), ("novel", args.novel, 2)):
        started = time.monotonic()
        path = generate_split(args.out, split, count, args.seed + offset)
        print(f"{split}: {count} images -> {path} ({time.monotonic() - started:.0f}s)")


def _save(model, tokenizer, out: Path, summary: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    from transformers import ViTImageProcessor

    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    size = model.config.encoder.image_size
    ViTImageProcessor(size={"height": size, "width": size}, image_mean=[0.5] * 3, image_std=[0.5] * 3).save_pretrained(out)
    summary["command"] = "python -m captioner " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    (out / "training.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")


def _train(args: argparse.Namespace, distill: bool) -> None:
    from captioner.dataset import load_coco
    from captioner.modeling import ARCHITECTURES, build_model, load_model, parameter_count
    from captioner.tokenizer import load_tokenizer, train_tokenizer
    from captioner.training import CaptionBatches, TrainConfig, train

    examples = load_coco(args.data)
    teacher = None
    if distill:
        teacher = load_model(args.teacher)
        tokenizer = load_tokenizer(args.teacher)
    elif args.tokenizer:
        tokenizer = load_tokenizer(args.tokenizer)
    else:
        tokenizer = train_tokenizer(text for e in examples for texts in e.captions.values() for text in texts)
    architecture = ARCHITECTURES[args.arch]
    model = build_model(architecture, tokenizer)
    config = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr, seed=args.seed, scene_weight=args.scene_weight
    )
    print(f"{args.arch}: {parameter_count(model):,} parameters, {len(examples)} images, vocabulary {len(tokenizer)}")
    data = CaptionBatches(examples, tokenizer, architecture.image_size, architecture.patch_size)
    summary = train(model, data, config, teacher)
    summary |= {"architecture": args.arch, "parameters": parameter_count(model), "train_config": vars(config)}
    _save(model, tokenizer, args.out, summary)
    print(f"saved {args.out} after {summary['seconds']:.0f}s")


def _export(args: argparse.Namespace) -> None:
    from captioner.export import export_onnx, quantize_int8

    started = time.monotonic()
    out = export_onnx(args.checkpoint, args.out, name=args.name, default_language=args.language)
    print(f"exported {args.checkpoint} -> {out} ({time.monotonic() - started:.0f}s)")
    if args.int8:
        print(f"quantised -> {quantize_int8(out, args.int8)}")


def _tensorrt(args: argparse.Namespace) -> None:
    import numpy as np

    from captioner.runtime import OnnxCaptioner
    from captioner.tensorrt import execution_providers, gpu_available

    ok, reason = gpu_available()
    if not ok:
        raise SystemExit(f"cannot build TensorRT engines: {reason}")
    providers = execution_providers("TensorrtExecutionProvider,CUDAExecutionProvider", fp16=not args.fp32, cache_dir=args.cache)
    captioner = OnnxCaptioner(args.model_dir, providers)
    size = captioner.config.image_size
    for batch in args.batch_sizes:  # each new shape builds (and caches) an engine
        started = time.monotonic()
        captioner.caption(np.zeros((batch, 3, size, size), np.uint8), ["en"] * batch)
        print(f"batch {batch}: engines ready in {time.monotonic() - started:.1f}s")
    print(f"TensorRT {'FP32' if args.fp32 else 'FP16'} engines cached in {args.cache}")


def _evaluate(args: argparse.Namespace) -> None:
    from captioner.report import run_evaluation

    report = run_evaluation(args.data, args.teacher, args.student, args.report, args.model_card, limit=args.limit)
    print(f"wrote {args.report}; student in-distribution English binding F1 "
          f"{report['quality']['student']['test']['en']['all']['binding_f1']}")


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="python -m captioner", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="command", help=COMMANDS)

    gen = sub.add_parser("generate", help="render the scene dataset (COCO captions format)")
    gen.add_argument("--out", type=Path, default=Path("data/scenes"))
    gen.add_argument("--train", type=int, default=24000, help="training images")
    gen.add_argument("--test", type=int, default=500, help="in-distribution test images")
    gen.add_argument("--novel", type=int, default=500, help="novel-composition (zero-shot) test images")
    gen.add_argument("--seed", type=int, default=0)

    for name, help_text in (("train", "train a captioner (the teacher) on a COCO captions dataset"),
                            ("distill", "distil a student from a trained teacher")):
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("--data", type=Path, default=Path("data/scenes/train.json"), help="COCO captions JSON")
        cmd.add_argument("--out", type=Path, required=True, help="checkpoint directory to write")
        cmd.add_argument("--arch", choices=["teacher", "student"], default="teacher" if name == "train" else "student")
        cmd.add_argument("--epochs", type=int, default=12)
        cmd.add_argument("--batch-size", type=int, default=64)
        cmd.add_argument("--lr", type=float, default=1e-3)
        cmd.add_argument("--seed", type=int, default=0)
        cmd.add_argument("--scene-weight", type=float, default=1.0,
                         help="weight of the per-patch scene-supervision loss where images carry a scene (0: off)")
        if name == "train":
            cmd.add_argument("--tokenizer", type=Path, help="reuse this tokenizer instead of training one")
        else:
            cmd.add_argument("--teacher", type=Path, required=True, help="teacher checkpoint directory")

    exp = sub.add_parser("export", help="export a checkpoint (ours or a Hugging Face one) to ONNX")
    exp.add_argument("checkpoint", type=Path, help="VisionEncoderDecoder checkpoint directory")
    exp.add_argument("--out", type=Path, required=True, help="directory for encoder.onnx, decoder.onnx, ...")
    exp.add_argument("--int8", type=Path, help="also write an INT8 dynamic-quantised copy here")
    exp.add_argument("--name", help="model name reported with captions (default: the directory name)")
    exp.add_argument("--language", default="en", help="caption language of a checkpoint without language tokens")

    trt = sub.add_parser("tensorrt", help="build and cache TensorRT FP16 engines of an export (GPU machines)")
    trt.add_argument("model_dir", type=Path, help="exported model directory")
    trt.add_argument("--cache", type=Path, required=True, help="engine cache directory (Triton: <version>/trt_cache)")
    trt.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 16, 32])
    trt.add_argument("--fp32", action="store_true", help="build FP32 engines instead of FP16")

    ev = sub.add_parser("evaluate", help="evaluate teacher and student; write the report and the model card table")
    ev.add_argument("--data", type=Path, default=Path("data/scenes"), help="folder with test.json and novel.json")
    ev.add_argument("--teacher", type=Path, default=Path("models/teacher"))
    ev.add_argument("--student", type=Path, default=Path("models/student"))
    ev.add_argument("--report", type=Path, default=Path("reports/captioner_eval.json"))
    ev.add_argument("--model-card", type=Path, default=Path("docs/model_card.md"))
    ev.add_argument("--limit", type=int, help="evaluate only the first N images of each split")

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.command == "generate":
        _generate(args)
    elif args.command in ("train", "distill"):
        _train(args, distill=args.command == "distill")
    elif args.command == "export":
        _export(args)
    elif args.command == "tensorrt":
        _tensorrt(args)
    else:
        _evaluate(args)
    return 0
