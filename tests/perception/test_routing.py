"""The scene-world router's two tests on synthetic features (no model needed)."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from perception.routing import SceneGaussian, SceneOdds, SceneWorldRouter, ledoit_wolf_shrinkage

DIMS = 16


def _scenes(count, dims=DIMS, seed=0):
    rng = np.random.default_rng(seed)
    scales = np.linspace(0.2, 3.0, dims)
    return rng.normal(0, 1, (count, dims)) * scales + 5.0


def _others(count, seed=1):
    """Images the Gaussian alone would take for scenes: 6 standard deviations off along the widest axis."""
    return _scenes(count, seed=seed) + 6 * 3.0 * np.eye(DIMS)[-1]


def test_new_scenes_pass_and_points_far_from_them_do_not():
    router = SceneWorldRouter.fit(_scenes(2000), _others(2000))
    assert router.is_scene_world(_scenes(500, seed=2)).mean() >= 0.99
    far = _scenes(50, seed=3) + 4.0 * np.eye(DIMS)[0] / 0.2  # 4 units along the narrowest direction, in its own scale
    assert not router.is_scene_world(far).any()


def test_images_near_the_scenes_but_on_the_other_side_of_the_odds_are_refused():
    router = SceneWorldRouter.fit(_scenes(2000), _others(2000))
    others = _others(500, seed=4)
    assert router.gaussian.accepts(others).mean() > 0.75  # the Gaussian alone lets most of them in
    # The odds test refuses nearly all of them, though it leans towards scenes (MIN_LOG_ODDS < 0).
    assert router.is_scene_world(others).mean() < 0.1


def test_distance_is_the_mahalanobis_distance_for_a_well_sampled_world():
    gaussian = SceneGaussian.fit(_scenes(20000, dims=4), _scenes(1000, dims=4, seed=1))
    point = np.array([[5.0 + 2 * 0.2, 5.0, 5.0, 5.0]])  # two standard deviations along the first axis
    assert gaussian.distance(point)[0] == pytest.approx(2.0, rel=0.05)
    assert gaussian.accepts(_scenes(1000, dims=4, seed=2)).mean() >= 0.99
    assert not gaussian.accepts(np.array([[5.0 + 15 * 0.2, 5.0, 5.0, 5.0]])).any()


def test_shrinkage_grows_when_samples_are_few():
    rng = np.random.default_rng(0)
    few = rng.normal(size=(30, 50))
    many = rng.normal(size=(5000, 50)) * np.linspace(0.5, 2, 50)
    assert ledoit_wolf_shrinkage(few - few.mean(0)) > ledoit_wolf_shrinkage(many - many.mean(0))


def test_the_odds_are_even_halfway_between_two_equally_spread_classes():
    rng = np.random.default_rng(0)
    odds = SceneOdds.fit(rng.normal(0.0, 1.0, (4000, 1)), rng.normal(4.0, 1.0, (1000, 1)))
    assert odds.log_odds(np.array([[2.0]]))[0] == pytest.approx(0.0, abs=0.2)
    assert odds.accepts(np.array([[0.5], [3.5]])).tolist() == [True, False]


def test_the_logistic_regression_is_scikit_learns_with_balanced_classes():
    scenes, others = _scenes(600), _scenes(300, seed=1) + 0.8
    odds = SceneOdds.fit(scenes, others, l2=2.0)
    features = np.concatenate([scenes, others])
    standard = (features - features.mean(0)) / (features.std(0) + 1e-6)
    labels = np.r_[np.ones(len(scenes)), np.zeros(len(others))]
    reference = LogisticRegression(C=1 / 2.0, class_weight="balanced", tol=1e-10, max_iter=10_000).fit(standard, labels)
    np.testing.assert_allclose(odds.weights, reference.coef_[0], atol=1e-4)
    assert odds.bias == pytest.approx(reference.intercept_[0], abs=1e-4)


def test_save_and_load_keep_the_decisions(tmp_path):
    router = SceneWorldRouter.fit(_scenes(500), _others(300))
    router.save(tmp_path / "router.npz")
    loaded = SceneWorldRouter.load(tmp_path / "router.npz")
    points = np.concatenate([_scenes(100, seed=2) * 1.3, _others(100, seed=3)])
    np.testing.assert_allclose(loaded.distance(points), router.distance(points), rtol=1e-5)
    np.testing.assert_allclose(loaded.log_odds(points), router.log_odds(points), rtol=1e-5, atol=1e-5)
    assert loaded.is_scene_world(points).tolist() == router.is_scene_world(points).tolist()
    assert loaded.gaussian.threshold == router.gaussian.threshold and loaded.fitted_on == (500, 300)


def test_a_file_of_the_one_sided_format_is_refused(tmp_path):
    np.savez(tmp_path / "old.npz", format_version=1, mean=np.zeros(4), whitening=np.eye(4), threshold=1.0)
    with pytest.raises(ValueError, match="format 1, expected 2"):
        SceneWorldRouter.load(tmp_path / "old.npz")


def test_features_of_another_width_are_refused():
    router = SceneWorldRouter.fit(_scenes(100), _others(100))
    with pytest.raises(ValueError, match=r"\[B, 16\]"):
        router.is_scene_world(np.zeros((2, 8)))
    with pytest.raises(ValueError, match=r"\[B, 16\]"):
        SceneWorldRouter.fit(_scenes(100), np.zeros((10, 8)))


def test_a_regression_without_a_penalty_is_refused():
    with pytest.raises(ValueError, match="l2 must be positive"):
        SceneOdds.fit(_scenes(100), _others(100), l2=0.0)
