"""``python -m localinfra up|status|down [component ...]``: run the local servers.

``up`` installs what is missing (first run: downloads and builds from package
registries), starts each server, waits until it is healthy, creates the topics
and the bucket, and prints how long each step took. ``down`` stops them. Both are
idempotent. State and logs live under ``CAPTIONING_LOCAL_STATE_DIR``.
"""

from __future__ import annotations

import argparse
import sys
import time

from localinfra.registry import COMPONENT_NAMES, components
from localinfra.settings import InfraConfig


def up(names: list[str], config: InfraConfig) -> int:
    """Install, start and provision the named components; prints cold/warm timings."""
    total = time.monotonic()
    for component in components(config, names):
        began = time.monotonic()
        install_s = 0.0
        if not component.installed():
            print(f"{component.name}: installing (first run)...", flush=True)
            component.install()
            install_s = time.monotonic() - began
        was_running = component.process.pid() is not None
        ready_s = component.start()
        summary = component.provision()
        kind = "already running" if was_running else ("cold start" if install_s else "warm start")
        print(
            f"{component.name}: healthy ({kind}: install {install_s:.1f}s, ready {ready_s:.1f}s, "
            f"total {time.monotonic() - began:.1f}s){' - ' + summary if summary else ''}",
            flush=True,
        )
    print(f"up: {time.monotonic() - total:.1f}s")
    return 0


def status(names: list[str], config: InfraConfig) -> int:
    """Print each component's state; exit 1 unless all are healthy."""
    all_ok = True
    for component in components(config, names):
        pid = component.process.pid()
        healthy = component.healthy()
        all_ok &= healthy
        state = "healthy" if healthy else ("running, not healthy" if pid else "stopped")
        print(f"{component.name:8} {state:22} pid={pid or '-'} log={component.process.log_file}")
    return 0 if all_ok else 1


def down(names: list[str], config: InfraConfig) -> int:
    """Stop the named components (reverse order)."""
    for component in reversed(components(config, names)):
        print(f"{component.name}: {'stopped' if component.stop() else 'not running'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m localinfra``."""
    parser = argparse.ArgumentParser(prog="python -m localinfra", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["up", "status", "down"])
    parser.add_argument("components", nargs="*", metavar="component",
                        help=f"some of: {', '.join(COMPONENT_NAMES)} (default: all)")
    args = parser.parse_args(argv)
    names = args.components or list(COMPONENT_NAMES)
    action = {"up": up, "status": status, "down": down}[args.action]
    try:
        return action(names, InfraConfig())
    except (RuntimeError, TimeoutError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
