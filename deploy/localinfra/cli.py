"""``python -m localinfra up|status|down [component ...]``: run the local servers;
``python -m localinfra scale caption=3 ...``: run several replicas of a service.

``up`` installs what is missing (first run: downloads and builds from package
registries), starts each server, waits until it is healthy, creates the topics
and the bucket, and prints how long each step took. ``down`` stops them, replicas
included. ``scale`` starts or stops replicas of pipeline services. All are
idempotent. State and logs live under ``CAPTIONING_LOCAL_STATE_DIR``.
"""

from __future__ import annotations

import argparse
import sys
import time

from captioning_common.kafka.topics import load_topics
from localinfra import scaling
from localinfra.components import Component
from localinfra.pipeline import SERVICE_NAMES
from localinfra.prometheus import Prometheus
from localinfra.registry import COMPONENT_NAMES, SERVER_NAMES, components
from localinfra.settings import InfraConfig

SCALE_HELP = f"""\
Run N replicas of each named service ({", ".join(SERVICE_NAMES)}) in its one
consumer group, e.g. `scale caption=3 moderation=2`. Replica 0 is the service
`up` starts; replica r > 0 is the instance <service>-r with its own pid file and
log under the state directory, listening on the service's port + r x
CAPTIONING_LOCAL_REPLICA_PORT_OFFSET (default 100: caption-1 on 9501). Missing
replicas are started; surplus ones are stopped highest first with SIGTERM (each
finishes and commits its in-flight batch, then leaves the group); 0 stops them
all. Running it again changes nothing. Then it waits until each group has
settled and prints which partitions each replica owns, as the broker sees it.
Kafka gives each partition to one member: replicas beyond the input topics'
partitions ({"/".join(map(str, sorted({t.partitions for t in load_topics().values() if t.consumers})))} per topic) stay idle. `status` lists the replicas, `down` stops them.

ingest: every replica serves the upload API on its own port (put a load
  balancer in front) and consumes claim checks from images.submitted.
caption: the replicas share the partitions of images.uploaded.
moderation: the replicas share captions.generated and moderation.decisions;
  a group reading several topics is assigned round-robin, so each replica
  gets its share of each topic.
indexing: every replica serves search on its own port, but only the holder of
  the index writer lease consumes captions.moderated and writes the index; the
  others wait for the lease and take over when the holder stops. Scaling
  indexing scales search and failover, not index writes.

Kafka, S3 and Triton must be running (`python -m localinfra up`).
"""


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
    """Print the state of each component and of its replicas; exit 1 unless all are healthy."""
    all_ok = True
    for component in _with_replicas(config, names):
        pid = component.process.pid()
        healthy = component.healthy()
        all_ok &= healthy
        state = "healthy" if healthy else ("running, not healthy" if pid else "stopped")
        print(f"{component.instance:12} {state:22} pid={pid or '-'} log={component.process.log_file}")
    return 0 if all_ok else 1


def down(names: list[str], config: InfraConfig) -> int:
    """Stop the named components and their replicas (reverse order, highest replica first)."""
    for component in reversed(_with_replicas(config, names)):
        print(f"{component.instance}: {'stopped' if component.stop() else 'not running'}")
        if component.instance in SERVICE_NAMES:  # replica 0: the next `up` starts it alone
            scaling.forget(config, component.instance)
    return 0


def scale(specs: list[str], config: InfraConfig) -> int:
    """Start or stop replicas until each named service runs the asked number."""
    counts = scaling.parse_counts(specs)
    down_servers = [server.name for server in components(config, list(SERVER_NAMES)) if not server.healthy()]
    if down_servers:
        raise RuntimeError(f"{', '.join(down_servers)} not running: start the servers first (python -m localinfra up)")
    scaling.scale(config, counts, lambda line: print(line, flush=True))
    prometheus = Prometheus(config)
    if prometheus.process.pid() is not None:
        prometheus.write_targets()  # scrape the replicas as they are now
    return 0


def _with_replicas(config: InfraConfig, names: list[str]) -> list[Component]:
    """The named components in start order, each service followed by its replicas."""
    found: list[Component] = []
    for component in components(config, names):
        found.append(component)
        if component.instance in SERVICE_NAMES:
            found += scaling.replicas(config, component.instance)
    return found


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m localinfra``."""
    parser = argparse.ArgumentParser(prog="python -m localinfra", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="action", required=True, metavar="{up,status,down,scale}")
    for action, what in (("up", "install, start and provision"), ("status", "show the state of"), ("down", "stop")):
        command = actions.add_parser(action, help=f"{what} the components (default: all)")
        command.add_argument("components", nargs="*", metavar="component", help=f"some of: {', '.join(COMPONENT_NAMES)} (default: all)")
    command = actions.add_parser("scale", help="run N replicas of pipeline services", description=SCALE_HELP,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    command.add_argument("components", nargs="+", metavar="service=N", help="replicas wanted per service, e.g. caption=3")
    args = parser.parse_args(argv)
    action = {"up": up, "status": status, "down": down, "scale": scale}[args.action]
    try:
        return action(args.components or list(COMPONENT_NAMES), InfraConfig())
    except (RuntimeError, TimeoutError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
