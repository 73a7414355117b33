"""The preparation steps' stamps: what is current is skipped, what changed is rebuilt."""

from pathlib import Path

import pytest

from perception.prepare import Step, prepare


def _steps(calls: list[str], pins: str = "1.0") -> tuple[Step, ...]:
    def builder(name: str, output: str):
        def build(repository: Path, wheels: Path) -> None:
            calls.append(name)
            (repository / output).parent.mkdir(parents=True, exist_ok=True)
            (repository / output).write_text(name)

        return build

    return (
        Step("base", builder("base", "base/1/model.onnx"), ("base/1/model.onnx",), {"package": pins}),
        Step("derived", builder("derived", "other/1/stats.npz"), ("other/1/stats.npz",), after=("base",)),
    )


def test_a_second_run_skips_what_is_current(tmp_path):
    calls: list[str] = []
    prepare(tmp_path, tmp_path / "cache", steps=_steps(calls))
    prepare(tmp_path, tmp_path / "cache", steps=_steps(calls))
    assert calls == ["base", "derived"]
    assert (tmp_path / "base/1/.prepared-base.json").exists() and (tmp_path / "other/1/.prepared-derived.json").exists()


def test_force_rebuilds_everything(tmp_path):
    calls: list[str] = []
    prepare(tmp_path, tmp_path / "cache", steps=_steps(calls))
    prepare(tmp_path, tmp_path / "cache", force=True, steps=_steps(calls))
    assert calls == ["base", "derived"] * 2


def test_a_new_pin_rebuilds_the_step_and_the_steps_after_it(tmp_path):
    calls: list[str] = []
    prepare(tmp_path, tmp_path / "cache", steps=_steps(calls))
    prepare(tmp_path, tmp_path / "cache", steps=_steps(calls, pins="2.0"))
    assert calls == ["base", "derived", "base", "derived"]


def test_a_missing_output_rebuilds_only_its_step(tmp_path):
    calls: list[str] = []
    prepare(tmp_path, tmp_path / "cache", steps=_steps(calls))
    (tmp_path / "other/1/stats.npz").unlink()
    prepare(tmp_path, tmp_path / "cache", steps=_steps(calls))
    assert calls == ["base", "derived", "derived"]


def test_a_step_that_writes_nothing_fails(tmp_path):
    step = Step("lazy", lambda repository, wheels: None, ("lazy/1/model.onnx",))
    with pytest.raises(RuntimeError, match="did not write"):
        prepare(tmp_path, tmp_path / "cache", steps=(step,))


def test_steps_must_come_after_what_they_use(tmp_path):
    base, derived = _steps([])
    with pytest.raises(ValueError, match="must be listed before"):
        prepare(tmp_path, tmp_path / "cache", steps=(derived, base))
