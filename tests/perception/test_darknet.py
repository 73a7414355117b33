"""The darknet reader against OpenCV's, on a small YOLOv3-tiny-shaped network with random weights."""

import cv2
import numpy as np
import pytest
import torch

from perception.darknet import Darknet, parse_cfg

CFG = """
[net]
width=64
height=64
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=16
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=16
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=1

[convolutional]
size=1
stride=1
pad=1
filters=14
activation=linear

[yolo]
mask = 1,2
anchors = 10,14,  23,27,  37,58
classes=2
num=3

[route]
layers = -4

[upsample]
stride=2

[route]
layers = -1, 2

[convolutional]
size=1
stride=1
pad=1
filters=7
activation=linear

[yolo]
mask = 0
anchors = 10,14,  23,27,  37,58
classes=2
num=3
"""


def _weights(network: Darknet, rng: np.random.Generator) -> bytes:
    """A darknet weights file for ``network``: per convolution (batch norm beta, gamma, mean, variance) or bias, then kernels."""
    blocks = []
    for layer in network.layers:
        if not hasattr(layer, "conv"):
            continue
        filters = layer.filters
        if layer.norm is not None:
            blocks += [rng.normal(0, 0.3, 3 * filters), rng.uniform(0.5, 1.5, filters)]
        else:
            blocks.append(rng.normal(0, 0.3, filters))
        blocks.append(rng.normal(0, 0.3, layer.conv.weight.numel()))
    header = np.array([0, 2, 0], dtype=np.int32).tobytes() + np.array([0], dtype=np.int64).tobytes()
    return header + np.concatenate(blocks).astype(np.float32).tobytes()


def test_the_reader_matches_opencv(tmp_path):
    network = Darknet(parse_cfg(CFG))
    data = _weights(network, np.random.default_rng(0))
    network.load_weights(data)
    network.eval()
    (tmp_path / "tiny.cfg").write_text(CFG)
    (tmp_path / "tiny.weights").write_bytes(data)
    reference = cv2.dnn.readNetFromDarknet(str(tmp_path / "tiny.cfg"), str(tmp_path / "tiny.weights"))
    image = np.random.default_rng(1).uniform(0, 1, (1, 3, 64, 64)).astype(np.float32)
    reference.setInput(image)
    theirs = np.concatenate(reference.forward(reference.getUnconnectedOutLayersNames()))
    with torch.no_grad():
        ours = network(torch.from_numpy(image))[0].numpy()
    assert ours.shape == theirs.shape == (16 * 16 * 2 + 32 * 32 * 1, 7)
    np.testing.assert_allclose(ours[:, :4] / 64, theirs[:, :4], atol=1e-4)
    np.testing.assert_allclose(ours[:, 4], theirs[:, 4], atol=1e-4)


def test_weights_of_the_wrong_size_are_refused():
    network = Darknet(parse_cfg(CFG))
    data = _weights(network, np.random.default_rng(0))
    with pytest.raises(ValueError, match="holds"):
        network.load_weights(data + np.zeros(3, dtype=np.float32).tobytes())
    with pytest.raises(ValueError, match="ends before"):
        network.load_weights(data[:-400])


def test_a_head_whose_input_does_not_fit_its_anchors_is_refused():
    with pytest.raises(ValueError, match="yolo layer 7 needs 21 input channels, got 14"):
        Darknet(parse_cfg(CFG.replace("mask = 1,2", "mask = 0,1,2", 1)))


def test_unknown_layers_are_refused():
    with pytest.raises(ValueError, match=r"unsupported darknet layer \[shortcut\]"):
        Darknet(parse_cfg("[net]\nwidth=32\nheight=32\n[shortcut]\nfrom=-3\n"))
