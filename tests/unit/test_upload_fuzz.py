"""Fuzzing the upload validation in process: 1,200 mutated JPEG, PNG, WebP and GIF files.

Every mutant either validates or is refused with ImageRejected, within a time budget;
any other exception, or a file that keeps the validator busy past the budget, fails
the test with the mutant that did it (made again from its index and seed).
"""

from __future__ import annotations

import multiprocessing
import time
import traceback
import warnings
from collections import Counter

import pytest

from services.ingest.settings import IngestSettings
from services.ingest.validation import ImageRejected, ValidImage, image_id_of, validate_image
from tests.hostile_images import MUTATIONS, Mutant, base_images, mutant, mutants

COUNT = 1200
SEED = 0
BUDGET_S = 10.0  # per file; the slowest (a 1 x 40,000,000 PNG at the pixel limit) takes about 1 s


def outcome_of(mutant: Mutant, settings: IngestSettings) -> str:
    """``accepted``, ``rejected <code> <status>`` or ``crash <traceback>``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns about corrupt EXIF; the outcome is what counts
            image = validate_image(mutant.data, settings)
    except ImageRejected as exc:
        return f"rejected {exc.code} {exc.http_status}"
    except BaseException:  # noqa: BLE001 - anything else is the finding
        return f"crash {traceback.format_exc()}"
    assert isinstance(image, ValidImage) and image.image_id == image_id_of(mutant.data)
    assert image.width >= settings.min_side and image.height >= settings.min_side
    assert image.width * image.height <= settings.max_pixels
    return "accepted"


def _validate_all(count: int, seed: int, connection) -> None:
    settings = IngestSettings()
    for mutant in mutants(count, seed):
        connection.send(("start", mutant.index, time.monotonic()))
        started = time.perf_counter()
        result = outcome_of(mutant, settings)
        connection.send(("done", mutant.index, result, time.perf_counter() - started))
    connection.send(("end",))


def fuzz(count: int, seed: int, budget_s: float) -> tuple[dict[int, str], dict[int, float]]:
    """Outcome and seconds of each mutant, validated in a child process that is stopped when one file overruns the budget."""
    receiver, sender = multiprocessing.get_context("fork").Pipe(duplex=False)
    worker = multiprocessing.get_context("fork").Process(target=_validate_all, args=(count, seed, sender), daemon=True)
    worker.start()
    sender.close()  # the child's end: a dead child then reads as EOF here
    outcomes, seconds, current = {}, {}, None
    try:
        while True:
            if not receiver.poll(budget_s):
                raise AssertionError(f"mutant #{current} (seed {seed}) kept the validator busy for more than {budget_s} s")
            try:
                message = receiver.recv()
            except EOFError:
                worker.join()
                raise AssertionError(f"the validator process died at mutant #{current} (seed {seed}), exit code {worker.exitcode}") from None
            if message[0] == "end":
                return outcomes, seconds
            if message[0] == "start":
                current = message[1]
            else:
                outcomes[message[1]], seconds[message[1]] = message[2], message[3]
    finally:
        worker.kill()
        worker.join()


def check_mutants(count: int, seed: int) -> Counter:
    """Fuzz ``count`` mutants of ``seed``: no crash, none over the budget; the count of each outcome."""
    outcomes, seconds = fuzz(count, seed, BUDGET_S)
    crashes = [f"{mutant(i, seed)}: {o}" for i, o in outcomes.items() if o.startswith("crash")]
    assert not crashes, "\n".join(crashes[:3])
    assert len(outcomes) == count
    counts = Counter(o.split(" ")[0] if o == "accepted" else o.split(" ")[1] for o in outcomes.values())
    print(f"\n{count} mutants of seed {seed}: {dict(sorted(counts.items()))}; slowest {max(seconds.values()):.2f} s")
    return counts


def test_every_mutated_image_is_accepted_or_rejected_in_time() -> None:
    counts = check_mutants(COUNT, SEED)
    # The mutations reach past the format check into the decoder, and some survive it.
    assert counts["accepted"] > COUNT // 10 and counts["corrupt_image"] > COUNT // 4
    assert counts["too_many_pixels"] > 0 and counts["unsupported_format"] > 0


@pytest.mark.hostile
@pytest.mark.parametrize("seed", range(1, 6))
def test_25000_more_mutated_images_are_accepted_or_rejected_in_time(seed: int) -> None:
    check_mutants(5000, seed)


@pytest.mark.parametrize(("seed", "index", "size"), [(4, 537, (32, 48)), (6, 4815, (32, 48))])
def test_a_corrupt_exif_tag_beside_the_orientation_is_no_crash(seed: int, index: int, size: tuple[int, int]) -> None:
    """Found by this fuzzing: re-encoding the EXIF block after rotating raised struct.error and TypeError."""
    found = mutant(index, seed)
    assert found.mutation in ("corrupt-header", "bit-flip") and "exif" in found.base
    image = validate_image(found.data, IngestSettings())
    assert (image.width, image.height) == size  # still turned upright


def test_mutants_cover_every_base_file_and_mutation() -> None:
    made = list(mutants(COUNT, SEED))
    assert {m.base for m in made} == set(base_images(SEED)) and {m.mutation for m in made} == set(MUTATIONS)
    assert len({m.data for m in made}) > COUNT * 0.85  # few mutations coincide
    assert [m.data for m in mutants(50, SEED)] == [m.data for m in made[:50]]  # a failure can be made again
    assert mutant(777, SEED) == made[777]


def test_a_crashing_validator_is_reported(monkeypatch) -> None:
    """The harness itself: an exception other than ImageRejected is a finding, not a rejection."""

    def broken(data: bytes, settings: IngestSettings) -> ValidImage:
        raise KeyError("boom")

    monkeypatch.setattr(f"{__name__}.validate_image", broken)
    outcomes, _ = fuzz(3, SEED, BUDGET_S)
    assert all(o.startswith("crash") and "KeyError: 'boom'" in o for o in outcomes.values())


def test_a_hanging_validator_is_reported(monkeypatch) -> None:
    monkeypatch.setattr(f"{__name__}.validate_image", lambda data, settings: time.sleep(60))
    with pytest.raises(AssertionError, match="mutant #0 .* busy"):
        fuzz(2, SEED, 0.5)
