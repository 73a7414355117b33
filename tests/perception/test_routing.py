"""The scene-world router's statistics on synthetic features (no model needed)."""

import numpy as np
import pytest

from perception.routing import SceneWorldRouter, ledoit_wolf_shrinkage


def _scenes(count, dims=16, seed=0):
    rng = np.random.default_rng(seed)
    scales = np.linspace(0.2, 3.0, dims)
    return rng.normal(0, 1, (count, dims)) * scales + 5.0


def test_new_samples_of_the_fitted_world_pass_and_far_points_do_not():
    router = SceneWorldRouter.fit(_scenes(2000))
    new = _scenes(500, seed=1)
    assert router.is_scene_world(new).mean() >= 0.99
    far = new + 4.0 * np.eye(16)[0] / 0.2  # 4 units along the narrowest direction, in its own scale
    assert not router.is_scene_world(far[:50]).any()


def test_distance_is_the_mahalanobis_distance_for_a_well_sampled_world():
    router = SceneWorldRouter.fit(_scenes(20000, dims=4))
    point = np.array([[5.0 + 2 * 0.2, 5.0, 5.0, 5.0]])  # two standard deviations along the first axis
    assert router.distance(point)[0] == pytest.approx(2.0, rel=0.05)


def test_shrinkage_grows_when_samples_are_few():
    rng = np.random.default_rng(0)
    few = rng.normal(size=(30, 50))
    many = rng.normal(size=(5000, 50)) * np.linspace(0.5, 2, 50)
    assert ledoit_wolf_shrinkage(few - few.mean(0)) > ledoit_wolf_shrinkage(many - many.mean(0))


def test_save_and_load_keep_the_decisions(tmp_path):
    router = SceneWorldRouter.fit(_scenes(500))
    router.save(tmp_path / "router.npz")
    loaded = SceneWorldRouter.load(tmp_path / "router.npz")
    points = _scenes(100, seed=2) * 1.3
    np.testing.assert_allclose(loaded.distance(points), router.distance(points), rtol=1e-5)
    assert loaded.threshold == router.threshold and loaded.fitted_on == 400


def test_features_of_another_width_are_refused():
    router = SceneWorldRouter.fit(_scenes(100))
    with pytest.raises(ValueError, match=r"\[B, 16\]"):
        router.distance(np.zeros((2, 8)))
