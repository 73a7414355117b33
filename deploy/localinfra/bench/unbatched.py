"""The same models without dynamic batching: a second Triton serving a copy of the model
repository whose configs have no ``dynamic_batching`` block, so every request runs alone."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from captioning_common.settings import TritonSettings
from captioning_common.triton import triton_client, wait_until_ready
from localinfra.settings import InfraConfig, free_port
from localinfra.triton import Triton

INSTANCE = "triton-unbatched"
DYNAMIC_BATCHING = re.compile(r"^dynamic_batching\s*\{[^}]*\}\n", re.MULTILINE)


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system
        shutil.copy2(source, target)


def unbatched_copy(source: Path, target: Path) -> list[str]:
    """Copy ``source`` to ``target`` (model files hard-linked, configs rewritten without dynamic
    batching); returns the models whose batching was removed."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target, copy_function=_link_or_copy, ignore=shutil.ignore_patterns("__pycache__", "trt_cache"))
    changed = []
    for config in sorted(target.glob("*/config.pbtxt")):
        text = config.read_text()
        unbatched = DYNAMIC_BATCHING.sub("", text)
        if unbatched != text:
            config.unlink()  # a hard link: the original must stay as it is
            config.write_text(unbatched)
            changed.append(config.parent.name)
    return changed


@contextmanager
def unbatched_triton(config: InfraConfig) -> Iterator[TritonSettings]:
    """A Triton of its own on free ports serving the unbatched copy; stopped and removed afterwards."""
    repository = config.state_dir / INSTANCE / "model_repository"
    if not unbatched_copy(config.local.model_repository, repository):
        raise RuntimeError(f"no config under {config.local.model_repository} has dynamic batching to remove")
    settings = TritonSettings(
        grpc_url=f"127.0.0.1:{free_port()}", http_url=f"127.0.0.1:{free_port()}", metrics_url=f"http://127.0.0.1:{free_port()}/metrics"
    )
    server = Triton(InfraConfig(local=config.local.model_copy(update={"model_repository": repository}), triton=settings), instance=INSTANCE)
    server.start()
    try:
        wait_until_ready(triton_client(settings, "http"), "captioner")
        yield settings
    finally:
        server.stop()
        shutil.rmtree(repository, ignore_errors=True)
