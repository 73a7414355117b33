"""Letterboxing, box mapping, zoomed-out views and NMS, on hand-built images and boxes."""

import numpy as np
import pytest
from PIL import Image

from perception.detection import (
    PAD_VALUE,
    Letterbox,
    detect,
    from_zoomed_out,
    letterbox,
    network_input,
    non_max_suppression,
    zoomed_out,
)


def _raw(rows, classes=3):
    """Raw detector rows from (cx, cy, w, h, objectness, class, class probability)."""
    raw = np.zeros((len(rows), 5 + classes), dtype=np.float32)
    for i, (cx, cy, w, h, objectness, label, probability) in enumerate(rows):
        raw[i, :5] = cx, cy, w, h, objectness
        raw[i, 5 + label] = probability
    return raw


def test_letterbox_of_a_wide_image_pads_top_and_bottom_with_grey():
    image = Image.new("RGB", (200, 100), (255, 0, 0))
    pixels, frame = letterbox(image, 416)
    assert pixels.shape == (416, 416, 3) and pixels.dtype == np.uint8
    assert frame == Letterbox(scale=2.08, pad_x=0, pad_y=104)
    assert (pixels[:104] == PAD_VALUE).all() and (pixels[-104:] == PAD_VALUE).all()
    assert (pixels[104:312] == (255, 0, 0)).all()


def test_letterbox_of_a_tall_image_pads_left_and_right():
    pixels, frame = letterbox(Image.new("RGB", (50, 100), (0, 0, 255)), 416)
    assert (frame.pad_x, frame.pad_y) == (104, 0)
    assert (pixels[:, :104] == PAD_VALUE).all() and (pixels[:, 104:312] == (0, 0, 255)).all()


def test_a_box_maps_back_to_the_original_image():
    image = Image.new("RGB", (200, 100))
    _, frame = letterbox(image, 416)
    # the original's right half, from 25% to 75% of its height, in input pixels
    box = (208.0, 104 + 0.25 * 208, 416.0, 104 + 0.75 * 208)
    assert frame.to_relative(box, 200, 100) == pytest.approx((0.5, 0.25, 0.5, 0.5))


def test_boxes_reaching_into_the_padding_are_clipped_to_the_image():
    _, frame = letterbox(Image.new("RGB", (200, 100)), 416)
    x, y, width, height = frame.to_relative((-20.0, 0.0, 100.0, 416.0), 200, 100)
    assert (x, y) == (0.0, 0.0) and height == 1.0 and width == pytest.approx(100 / 416)


def test_nms_keeps_the_best_of_overlapping_boxes_of_one_class():
    raw = _raw([
        (100, 100, 50, 50, 0.9, 0, 0.9),  # score 0.81
        (104, 102, 50, 50, 0.9, 0, 0.8),  # overlaps the first, same class: suppressed
        (300, 300, 40, 40, 0.8, 0, 0.5),  # apart: kept
    ])
    result = non_max_suppression(raw, 0.25, 0.45)
    assert result.shape == (100, 6)
    np.testing.assert_allclose(result[0], [75, 75, 125, 125, 0.81, 0], atol=1e-5)
    np.testing.assert_allclose(result[1], [280, 280, 320, 320, 0.4, 0], atol=1e-5)
    assert (result[2:] == 0).all()


def test_nms_is_per_class_and_sorted_by_score():
    raw = _raw([
        (100, 100, 50, 50, 0.6, 1, 1.0),  # score 0.6, class 1
        (100, 100, 50, 50, 0.9, 2, 1.0),  # same box, class 2, score 0.9: both kept
    ])
    result = non_max_suppression(raw, 0.25, 0.45)
    assert result[:2, 4:].tolist() == [[pytest.approx(0.9), 2.0], [pytest.approx(0.6), 1.0]]


def test_nms_drops_scores_under_the_threshold_and_counts_objectness():
    raw = _raw([(100, 100, 50, 50, 0.4, 0, 0.5), (300, 300, 50, 50, 1.0, 0, 0.3)])
    result = non_max_suppression(raw, 0.25, 0.45)
    assert result[0, 4] == pytest.approx(0.3) and (result[1:] == 0).all()


def test_nms_caps_the_number_of_detections():
    raw = _raw([(20 * i + 10, 10, 8, 8, 0.9, 0, 0.9 - 0.01 * i) for i in range(20)])
    result = non_max_suppression(raw, 0.25, 0.45, max_detections=5)
    assert result.shape == (5, 6) and (np.diff(result[:, 4]) <= 0).all() and result[-1, 4] > 0


def test_nms_rejects_malformed_input():
    with pytest.raises(ValueError, match="raw detections"):
        non_max_suppression(np.zeros((4, 5)), 0.25, 0.45)


def test_a_zoomed_out_view_maps_back_onto_the_input():
    pixels = np.zeros((1, 8, 8, 3), dtype=np.uint8)
    pixels[0, :4, :4] = 200  # top-left quadrant
    view = zoomed_out(pixels, 2)
    assert (view[0, 2:4, 2:4] == 200).all() and (view[0, 4:6, 4:6] == 0).all() and (view[0, 0] == PAD_VALUE).all()
    mapped = from_zoomed_out(np.array([[[3.0, 3.0, 2.0, 2.0, 1.0, 1.0]]]), 2, 8)
    np.testing.assert_allclose(mapped[0, 0, :4], [2.0, 2.0, 4.0, 4.0])  # the quadrant's centre and size


def test_detect_merges_views_into_one_set_of_detections():
    pixels = np.full((2, 16, 16, 3), 50, dtype=np.uint8)
    seen = []

    def network(inputs):
        seen.append(inputs)
        raw = np.zeros((len(inputs), 2, 6), dtype=np.float32)
        raw[:2, 0] = (8, 8, 8, 8, 0.9, 0.9)  # the full views: a box in the middle
        raw[2:, 0] = (8, 8, 4, 4, 0.9, 0.95)  # the zoomed views: the same box, half size
        return raw

    result = detect(network, pixels, zoom_out=(2,), score_threshold=0.25, iou_threshold=0.45, max_detections=3)
    assert seen[0].shape == (4, 3, 16, 16) and seen[0].dtype == np.float32
    assert result.shape == (2, 3, 6)
    np.testing.assert_allclose(result[:, 0], [[4, 4, 12, 12, 0.855, 0]] * 2, atol=1e-5)  # one box left
    assert (result[:, 1:] == 0).all()


def test_network_input_is_nchw_in_unit_range():
    converted = network_input(np.full((1, 4, 4, 3), 255, dtype=np.uint8))
    assert converted.shape == (1, 3, 4, 4) and converted.max() == 1.0
