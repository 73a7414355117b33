"""``python -m localinfra.chaos``: the pipeline under seeded faults, then checks of what it promised.

Starts its own three-node Kafka cluster, MinIO, Triton and the four services (two
caption replicas) under ``--state-dir`` on ports from ``--port-base``; streams uploads
and claim-check submissions paced over ``--duration`` seconds while the printed
schedule SIGKILLs service processes, one broker, MinIO and Triton, restarting each;
a reviewer decides every item held for review. Then it waits until every consumer
group's lag is 0 and checks: each accepted image is final (indexed, failed with a
cause, or rejected), each approved image is in the index exactly once and announced
on ``index.updated``, no reviewer decision was overridden, no 5xx but 503. Writes the
report as JSON; exits 1 on any violation.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from localinfra.chaos.checks import group_lag, index_events, index_rows, partition_lag, read_statuses, uncommitted_keys, wait_drained
from localinfra.chaos.clients import Reviewer, Sender
from localinfra.chaos.environment import ChaosEnvironment
from localinfra.chaos.injector import FaultInjector
from localinfra.chaos.report import ACCEPTED, Evidence, figures, violations
from localinfra.chaos.schedule import Shape, describe, plan
from localinfra.chaos.workload import HttpStats, RetryingClient, items, send_paced
from services.indexing.settings import IndexingSettings


def log(message: str) -> None:
    print(message, flush=True)


def run(args: argparse.Namespace) -> dict:
    """One chaos run; returns the report (``violations`` empty when every check held)."""
    phases: dict[str, float] = {}
    began = time.monotonic()
    env = ChaosEnvironment(Path(args.state_dir), args.port_base, caption_replicas=args.caption_replicas)
    servers = tuple(name for name in ("s3", "triton") if name in args.restart_servers.split(","))
    services, brokers = tuple(s.instance for s in env.services), tuple(n.instance for n in env.brokers)
    faults = plan(args.seed, Shape(args.duration, args.kills, services, brokers, servers))
    log(describe(args.seed, faults))
    workload = items(args.seed, args.uploads)
    log(f"workload (seed {args.seed}): {len(workload)} items, {sum(i.via == 'claim-check' for i in workload)} claim checks, "
        f"{sum(i.kind == 'sign' for i in workload)} signs, paced over {args.duration:.0f}s")
    env.reset()
    stats = HttpStats()
    client = RetryingClient(stats, budget_s=args.client_budget)
    reviewer = Reviewer(env, client, args.seed)
    try:
        timings = env.start(log)
        phases["start_s"] = time.monotonic() - began
        reviewer.start()
        sender = Sender(env, client, budget_s=args.client_budget)
        sent, outcomes = _under_faults(env, faults, workload, sender, args.duration, phases)
        drained, stuck = _drain(env, reviewer, args.drain_timeout, phases)
        reviewer.stop()
        checks_began = time.monotonic()
        evidence = _evidence(env, sent, outcomes, reviewer, stats, drained, stuck)
        phases["checks_s"] = time.monotonic() - checks_began
        report = {
            "seed": args.seed,
            "shape": {"uploads": args.uploads, "duration_s": args.duration, "service_kills": args.kills,
                      "caption_replicas": args.caption_replicas, "restarted_servers": list(servers)},
            "schedule": [outcome.as_dict() for outcome in outcomes],
            "startup_s": {name: round(seconds, 1) for name, seconds in timings.items()},
            "kafka": env.replication(),
            "http": stats.as_dict(),
            "platform_retries": dict(sender.backend_errors),
            "figures": figures(evidence),
            "lagging_partitions": stuck,
            "violations": violations(evidence),
            "warnings": [
                {"check": "crash_on_start", "target": o.fault.target, "at_s": o.killed_at_s, "detail": crash}
                for o in outcomes for crash in o.crashes_on_start
            ],
        }
    finally:
        reviewer.stop()
        if not args.keep_running:
            env.stop()
    phases["total_s"] = time.monotonic() - began
    report["phases_s"] = {name: round(seconds, 1) for name, seconds in phases.items()}
    return report


def _under_faults(env: ChaosEnvironment, faults, workload, sender: Sender, duration_s: float, phases: dict) -> tuple[list, list]:
    """Send the workload while the injector carries out the schedule; returns (what was sent, fault outcomes)."""
    groups = env.group_inputs()
    injector = FaultInjector(faults, env.targets(), log, lag=lambda: group_lag(env.config.kafka, groups, timeout_s=3))
    began = time.monotonic()
    injector.start()
    sent = send_paced(workload, duration_s, sender.send)
    log(f"sent {len(sent)} items in {time.monotonic() - began:.0f}s; waiting for the remaining faults")
    outcomes = injector.wait()
    sender.close()
    phases["chaos_s"] = time.monotonic() - began
    log(f"faults done after {phases['chaos_s']:.0f}s; draining")
    for name, component in env.targets().items():  # a failed restart is a violation already; the checks still want it up
        if component.process.pid() is None:
            log(f"{name} is down after its restart failed; starting it once more")
            try:
                component.start()
            except Exception as exc:
                log(f"{name} did not start: {exc}")
    return sent, outcomes


def _drain(env: ChaosEnvironment, reviewer: Reviewer, timeout_s: float, phases: dict) -> tuple[bool, list[dict]]:
    """Wait until every group's lag is 0, every process runs, no review is pending and no partition is short of replicas.

    Returns (drained, the partitions still lagging with the keys of their uncommitted messages).
    """
    targets, groups = env.targets(), env.group_inputs()

    def busy() -> str:
        down = [name for name, component in targets.items() if component.process.pid() is None]
        short = env.under_replicated()
        return " ".join(filter(None, [
            f"down: {down}" if down else "",
            f"{reviewer.pending()} reviews pending" if reviewer.pending() else "",
            f"{len(short)} partitions under-replicated" if short else "",
        ]))

    began = time.monotonic()
    drained, _, lags = wait_drained(lambda: group_lag(env.config.kafka, groups), busy, timeout_s, log)
    phases["drain_s"] = time.monotonic() - began
    log(f"drained={drained} in {phases['drain_s']:.0f}s; lag {lags}; checking")
    stuck = []
    if not drained:  # evidence, read before the services stop (a graceful stop commits what it holds)
        stuck = [row | {"keys": uncommitted_keys(env.config.kafka, row)} for row in partition_lag(env.config.kafka, groups) if row["lag"]]
        log(f"lagging partitions: {stuck}")
    return drained, stuck


def _evidence(env: ChaosEnvironment, sent: list, outcomes: list, reviewer: Reviewer, stats: HttpStats, drained: bool, stuck: list) -> Evidence:
    """Statuses of every accepted image, the index's rows, ``index.updated`` and the reviewer's decisions."""
    check_stats = HttpStats()
    accepted = sorted({s.item.image_id for s in sent if s.outcome in ACCEPTED})
    statuses = read_statuses(RetryingClient(check_stats, budget_s=60), env.ingest_url, env.headers, accepted)
    indexing = IndexingSettings(index_prefix=env.env["CAPTIONING_INDEXING_INDEX_PREFIX"])
    return Evidence(
        sent=sent,
        statuses=statuses,
        index_rows=index_rows(env.config.s3, indexing),
        index_events=index_events(env.config.kafka),
        held=set(reviewer.held),
        decided=dict(reviewer.decided),
        refused=dict(reviewer.refused),
        fault_errors=[f"{o.fault.target} at {o.fault.at_s}s: {o.error}" for o in outcomes if o.error],
        server_errors=stats.server_errors + check_stats.server_errors,
        drained=drained,
        lagging=stuck,
        under_replicated=env.under_replicated(),
    )


def print_report(report: dict) -> None:
    figures_ = report["figures"]
    kills = [o for o in report["schedule"] if o["killed_at_s"] is not None]
    log("\n== chaos report ==")
    log(f"seed {report['seed']}: {len(kills)} SIGKILLs ({sum(o['kind'] == 'service' for o in kills)} services, "
        f"{sum(o['kind'] == 'broker' for o in kills)} broker, {sum(o['kind'] == 'server' for o in kills)} servers)")
    log(f"items {figures_['items']} {figures_['by_route']} {figures_['by_kind']}; outcomes {figures_['outcomes']}")
    log(f"final {figures_['final']}; failure causes {figures_['failure_causes']}")
    log(f"index: {figures_['index_rows']} rows for {figures_['index_images']} images; UPSERT events per image {figures_['upserts_per_image']}")
    log(f"reviews: {figures_['held_for_review']} held, decisions {figures_['decisions']}")
    log(f"HTTP: {report['http']}; platform retries {report['platform_retries']}")
    log(f"phases: {report['phases_s']}")
    for warning in report["warnings"]:
        log(f"warning: {warning['target']} exited while starting after its kill at {warning['at_s']}s: {warning['detail'][-400:]}")
    if report["violations"]:
        log(f"VIOLATIONS ({len(report['violations'])}):")
        for violation in report["violations"][:50]:
            log(f"  {violation['check']}: {violation['image_id'][:16]} {violation['detail']}")
    else:
        log("no violations")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m localinfra.chaos``."""
    parser = argparse.ArgumentParser(prog="python -m localinfra.chaos", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0, help="seed of the schedule and the images (default 0)")
    parser.add_argument("--uploads", type=int, default=580, help="items sent, uploads and claim checks (default 580: over 500 uploads)")
    parser.add_argument("--duration", type=float, default=150, help="seconds the items and the faults are spread over (default 150)")
    parser.add_argument("--kills", type=int, default=24, help="SIGKILLs of service processes, each service at least once (default 24)")
    parser.add_argument("--caption-replicas", type=int, default=2, help="caption service members of one consumer group (default 2)")
    parser.add_argument("--restart-servers", default="s3,triton", help="servers killed and restarted once each (default s3,triton; '' for none)")
    parser.add_argument("--state-dir", default=".local/chaos", help="data and logs of the run's servers, wiped at start (default .local/chaos)")
    parser.add_argument("--port-base", type=int, default=19000, help="first of the run's ports (default 19000)")
    parser.add_argument("--client-budget", type=float, default=300, help="seconds a client keeps retrying one request (default 300)")
    parser.add_argument("--drain-timeout", type=float, default=900, help="seconds to wait for lag 0 after the faults (default 900)")
    parser.add_argument("--report", default="reports/chaos.json", help="where the JSON report goes (default reports/chaos.json)")
    parser.add_argument("--keep-running", action="store_true", help="leave the run's servers and services running")
    args = parser.parse_args(argv)
    report = run(args)
    Path(args.report).parent.mkdir(parents=True, exist_ok=True)
    Path(args.report).write_text(json.dumps(report, indent=2) + "\n")
    print_report(report)
    log(f"report: {args.report}")
    return 1 if report["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
