"""Classifier pre- and post-processing."""

import numpy as np
import pytest
from PIL import Image

from perception.classification import classifier_pixels, scale, top_k


def test_the_whole_image_is_resized_to_a_square():
    pixels = classifier_pixels(Image.new("L", (300, 100), 90))
    assert pixels.shape == (224, 224, 3) and pixels.dtype == np.uint8 and (pixels == 90).all()


def test_scale_is_nchw_centred_on_127():
    pixels = np.zeros((2, 224, 224, 3), dtype=np.uint8)
    pixels[..., 0] = 255
    pixels[..., 1] = 127
    scaled = scale(pixels)
    assert scaled.shape == (2, 3, 224, 224) and scaled.dtype == np.float32
    assert scaled[:, 0].max() == pytest.approx(1.0) and (scaled[:, 1] == 0).all() and scaled[:, 2].min() == pytest.approx(-127 / 128)


def test_scale_refuses_other_types():
    with pytest.raises(ValueError, match="uint8"):
        scale(np.zeros((224, 224, 3), dtype=np.float32))


def test_top_k_is_best_first():
    indices, scores = top_k(np.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]]), 2)
    assert indices.tolist() == [[1, 2], [0, 2]]
    np.testing.assert_allclose(scores, [[0.6, 0.3], [0.5, 0.3]])
