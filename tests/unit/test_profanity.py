"""The moderation service's numpy profanity scorer gives alt-profanity-check's own probabilities."""

from __future__ import annotations

import numpy as np
import pytest
from profanity_check import profanity_check  # the `model` extra installs alt-profanity-check

from captioning_common.kafka.topics import StageTopics
from captioning_common.metrics import PipelineMetrics
from services.moderation import profanity
from services.moderation.image_classifier import NoImageClassifier
from services.moderation.profanity import MODEL_FILE, ProfanityModel, export, main, predict_prob
from services.moderation.settings import ModerationSettings
from services.moderation.stage import ModerationStage
from tests.unit.stages.fakes import fake_records

TEXTS = [
    "two small red circles above a large blue square",
    "a yellow star on a white background",
    "what the fuck is this shit, you stupid bitch",
    "WHAT THE FUCK",  # case
    "damn damn damn, a damned cat",  # repeated words
    "the and of a",  # stop words only: no feature
    "",
    "작은 빨간 원 두 개",  # no English word
    "kill yourself, idiot!!! (seriously)",
    "an assassin's class in the assembly",  # words containing profanities
    "naïve café résumé über",  # non-ASCII word characters
    "f*ck sh1t a$$",  # obfuscations the vectoriser splits
]


def test_scores_equal_the_packages_own() -> None:
    expected = profanity_check.predict_prob(TEXTS)
    np.testing.assert_allclose(predict_prob(TEXTS), expected, rtol=0, atol=1e-12)
    assert predict_prob(TEXTS[:3]).tolist() == pytest.approx(expected[:3].tolist(), abs=1e-12)  # batches of any size


def test_bundled_parameters_are_what_export_writes(tmp_path) -> None:
    export(tmp_path / "model.npz")
    with np.load(MODEL_FILE) as bundled, np.load(tmp_path / "model.npz") as fresh:
        assert sorted(bundled.files) == sorted(fresh.files)
        for name in bundled.files:
            np.testing.assert_array_equal(bundled[name], fresh[name], err_msg=name)


def test_inconsistent_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="inconsistent"):
        ProfanityModel(["a", "b"], np.ones(3), np.ones((5, 3)), np.zeros(5), np.ones(5), np.zeros(5))


@pytest.fixture
def missing_model_file(tmp_path, monkeypatch):
    """MODEL_FILE pointed at a file not made yet, and nothing loaded: the state of a checkout before `make model-repository`."""
    monkeypatch.setattr(profanity, "MODEL_FILE", tmp_path / "profanity_model.npz")
    profanity.bundled.cache_clear()
    yield profanity.MODEL_FILE
    profanity.bundled.cache_clear()  # the next user loads the real file again


def _moderation_stage() -> ModerationStage:
    return ModerationStage(ModerationSettings(image_classifier="none"), NoImageClassifier(), fake_records([]),
                           StageTopics("moderation"), PipelineMetrics("moderation"), "signing-key")


def test_a_missing_model_file_fails_the_moderation_stage_when_it_is_built(missing_model_file) -> None:
    with pytest.raises(FileNotFoundError, match=r"profanity_model\.npz is missing: create it with `make model-repository`"):
        _moderation_stage()
    export(missing_model_file)  # the export needs no model file to exist
    _moderation_stage()
    assert predict_prob(["what the fuck"])[0] > 0.9  # the model just exported, loaded once


def test_check_command_loads_the_model_file(missing_model_file, capsys) -> None:
    with pytest.raises(FileNotFoundError, match="python -m services.moderation.profanity export"):
        main(["check"])
    assert main(["export"]) == 0 and missing_model_file.is_file()
    assert not missing_model_file.with_name("profanity_model.npz.partial").exists()
    assert main(["check"]) == 0
    words = len(profanity_check.vectorizer.vocabulary_)
    assert capsys.readouterr().out.splitlines()[-1] == f"profanity_model.npz: {words} words, 5 classifiers"
