"""`python -m localinfra scale`: its arguments, the replicas it finds, and when a consumer group counts as settled."""

from __future__ import annotations

import os

import pytest

from localinfra.scaling import describe, forget, parse_counts, remember, replicas, settled
from localinfra.settings import InfraConfig, LocalInfraSettings
from services.caption.settings import CaptionSettings

PARTITIONS = {("images.uploaded", p) for p in range(6)}
ORDERED = sorted(PARTITIONS)


def test_counts_are_parsed_and_bad_ones_refused() -> None:
    assert parse_counts(["caption=3", "moderation=2", "indexing=0"]) == {"caption": 3, "moderation": 2, "indexing": 0}
    for specs, message in (
        (["kafka=2"], "scale takes <service>=<replicas>"),
        (["caption"], "must be a whole number"),
        (["caption=-1"], "must be a whole number"),
        (["caption=2", "caption=3"], "caption is named twice"),
        ([], "name at least one"),
    ):
        with pytest.raises(ValueError, match=message):
            parse_counts(specs)


def test_replicas_are_the_recorded_ones_and_those_with_a_pid_file(tmp_path) -> None:
    config = InfraConfig(local=LocalInfraSettings(state_dir=tmp_path))
    remember(config, "caption", 3)
    (tmp_path / "caption-4").mkdir()
    (tmp_path / "caption-4" / "caption-4.pid").write_text(str(os.getpid()))  # left running by an earlier, larger scale
    (tmp_path / "caption-x").mkdir()
    (tmp_path / "caption-x" / "caption-x.pid").write_text("1")  # not a replica
    found = replicas(config, "caption")
    assert [(r.instance, r.replica) for r in found] == [("caption-1", 1), ("caption-2", 2), ("caption-4", 4)]
    offset, port = config.local.replica_port_offset, CaptionSettings().port
    assert [r.port for r in found] == [port + offset, port + 2 * offset, port + 4 * offset]
    assert replicas(config, "moderation") == []
    forget(config, "caption")
    assert [r.instance for r in replicas(config, "caption")] == ["caption-4"]


def test_a_group_is_settled_when_stable_and_each_partition_has_one_owner_among_the_members() -> None:
    members = {"caption", "caption-1", "caption-2"}
    spread = {"caption": set(ORDERED[:2]), "caption-1": set(ORDERED[2:4]), "caption-2": set(ORDERED[4:])}
    assert settled("STABLE", spread, PARTITIONS, members, leased=False)
    assert not settled("PREPARING_REBALANCING", spread, PARTITIONS, members, leased=False)
    assert not settled("STABLE", spread | {"caption-2": set()}, PARTITIONS, members, leased=False)  # two partitions unowned
    assert not settled("STABLE", spread | {"caption-2": spread["caption"]}, PARTITIONS, members, leased=False)  # owned twice
    assert not settled("STABLE", spread, PARTITIONS, members | {"caption-3"}, leased=False)  # a replica has not joined
    assert not settled("STABLE", spread | {"rdkafka": set()}, PARTITIONS, members, leased=False)  # a stranger in the group


def test_with_a_lease_one_member_owns_everything() -> None:
    members = {"indexing", "indexing-1"}
    assert settled("STABLE", {"indexing-1": set(PARTITIONS)}, PARTITIONS, members, leased=True)
    assert not settled("STABLE", {"indexing": set(ORDERED[:3]), "indexing-1": set(ORDERED[3:])}, PARTITIONS, members, leased=True)
    assert not settled("STABLE", {"indexing-2": set(PARTITIONS)}, PARTITIONS, members, leased=True)


def test_the_view_reads_as_one_line() -> None:
    view = {"caption-1": {("images.uploaded", 3), ("images.uploaded", 1)}, "caption": {("images.uploaded", 0)}, "idle": set()}
    assert describe(view) == "caption images.uploaded[0] | caption-1 images.uploaded[1,3] | idle nothing"
