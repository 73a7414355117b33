"""A small darknet reader in torch: YOLOv3-tiny's cfg and weights as a module (preparation only).

It knows the layers YOLOv3-tiny uses: convolutional (batch norm, leaky), maxpool,
route, upsample and yolo. The module's output is already decoded, ``[B, N, 5 + classes]``
rows of (cx, cy, w, h in input pixels, objectness, class probabilities), so the exported
graph needs no darknet knowledge at serving time.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional


def parse_cfg(text: str) -> list[dict[str, str]]:
    """The sections of a darknet cfg, in order, each with its ``type`` (``net``, ``convolutional``, ...)."""
    sections: list[dict[str, str]] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise ValueError(f"malformed section header {raw!r}")
            sections.append({"type": line[1:-1].strip()})
        elif "=" in line:
            if not sections:
                raise ValueError(f"option {raw!r} outside any section")
            key, value = line.split("=", 1)
            sections[-1][key.strip()] = value.strip()
        else:
            raise ValueError(f"malformed cfg line {raw!r}")
    if not sections or sections[0]["type"] != "net":
        raise ValueError("a darknet cfg starts with a [net] section")
    return sections


def _integers(value: str) -> list[int]:
    return [int(part) for part in value.split(",") if part.strip()]


class _Convolution(nn.Module):
    def __init__(self, section: dict[str, str], channels: int) -> None:
        super().__init__()
        size, stride = int(section["size"]), int(section.get("stride", 1))
        padding = size // 2 if int(section.get("pad", 0)) else int(section.get("padding", 0))
        self.batch_normalize = int(section.get("batch_normalize", 0)) == 1
        self.filters = int(section["filters"])
        self.conv = nn.Conv2d(channels, self.filters, size, stride, padding, bias=not self.batch_normalize)
        # darknet divides by sqrt(variance) + 1e-6; the same epsilon under the root differs negligibly
        self.norm = nn.BatchNorm2d(self.filters, eps=1e-6) if self.batch_normalize else None
        activation = section.get("activation", "linear")
        if activation not in ("leaky", "linear"):
            raise ValueError(f"unsupported activation {activation!r}")
        self.leaky = activation == "leaky"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.norm is not None:
            x = self.norm(x)
        return functional.leaky_relu(x, 0.1) if self.leaky else x

    def load(self, weights: np.ndarray, offset: int) -> int:
        """Copy this layer's weights from darknet's flat float32 array; returns the next offset."""

        def take(tensor: torch.Tensor) -> None:
            nonlocal offset
            count = tensor.numel()
            if offset + count > weights.size:
                raise ValueError("the weights file ends before the cfg's layers do")
            tensor.data.copy_(torch.from_numpy(weights[offset:offset + count].copy()).view_as(tensor))
            offset += count

        if self.norm is not None:  # darknet's order: beta, gamma, running mean, running variance
            for tensor in (self.norm.bias, self.norm.weight, self.norm.running_mean, self.norm.running_var):
                take(tensor)
        else:
            take(self.conv.bias)
        take(self.conv.weight)
        return offset


class _MaxPool(nn.Module):
    def __init__(self, section: dict[str, str]) -> None:
        super().__init__()
        self.size, self.stride = int(section["size"]), int(section.get("stride", 1))
        padding = int(section.get("padding", self.size - 1))
        # darknet pads by `padding` in total, `padding // 2` before; out-of-range cells never win
        self.before, self.after = padding // 2, padding - padding // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.before or self.after:
            # replicating the edge equals darknet's -FLT_MAX padding for a max over the window
            x = functional.pad(x, (self.before, self.after, self.before, self.after), mode="replicate")
        return functional.max_pool2d(x, self.size, self.stride)


class _Upsample(nn.Module):
    def __init__(self, section: dict[str, str]) -> None:
        super().__init__()
        self.stride = int(section.get("stride", 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return functional.interpolate(x, scale_factor=self.stride, mode="nearest")


class _Yolo(nn.Module):
    """Decodes one head: sigmoid offsets on the cell grid, anchor-scaled sizes, sigmoid scores."""

    def __init__(self, section: dict[str, str], input_size: int, grid: int) -> None:
        super().__init__()
        anchors = _integers(section["anchors"])
        mask = _integers(section["mask"])
        self.classes = int(section["classes"])
        pairs = [(anchors[2 * i], anchors[2 * i + 1]) for i in mask]
        self.grid, self.stride = grid, input_size / grid
        self.register_buffer("anchors", torch.tensor(pairs, dtype=torch.float32).view(1, 1, 1, len(pairs), 2))
        ys, xs = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
        self.register_buffer("cells", torch.stack((xs, ys), dim=-1).float().view(1, grid, grid, 1, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        anchors = self.anchors.shape[3]
        # rows ordered by cell, then anchor: the order of darknet's and OpenCV's outputs
        x = x.reshape(-1, anchors, 5 + self.classes, self.grid, self.grid).permute(0, 3, 4, 1, 2)
        centres = (torch.sigmoid(x[..., 0:2]) + self.cells) * self.stride
        sizes = torch.exp(x[..., 2:4]) * self.anchors
        scores = torch.sigmoid(x[..., 4:])
        return torch.cat((centres, sizes, scores), dim=-1).reshape(-1, anchors * self.grid * self.grid, 5 + self.classes)


class Darknet(nn.Module):
    """A darknet network from its parsed cfg; ``load_weights`` fills it from a ``.weights`` file."""

    def __init__(self, sections: list[dict[str, str]]) -> None:
        super().__init__()
        net = sections[0]
        self.input_size = int(net.get("width", 416))
        if int(net.get("height", self.input_size)) != self.input_size:
            raise ValueError("only square darknet inputs are supported")
        channels = [int(net.get("channels", 3))]
        grids = [self.input_size]
        self.layers = nn.ModuleList()
        self.routes: dict[int, list[int]] = {}
        for index, section in enumerate(sections[1:]):
            kind = section["type"]
            if kind == "convolutional":
                layer = _Convolution(section, channels[-1])
                out_channels = layer.filters
                grid = (grids[-1] + 2 * layer.conv.padding[0] - layer.conv.kernel_size[0]) // layer.conv.stride[0] + 1
            elif kind == "maxpool":
                layer = _MaxPool(section)
                out_channels = channels[-1]
                grid = (grids[-1] + layer.before + layer.after - layer.size) // layer.stride + 1
            elif kind == "upsample":
                layer = _Upsample(section)
                out_channels, grid = channels[-1], grids[-1] * layer.stride
            elif kind == "route":
                sources = [i if i >= 0 else index + i for i in _integers(section["layers"])]
                if any(not 0 <= i < index for i in sources):
                    raise ValueError(f"route {section['layers']!r} of layer {index} points outside the network")
                self.routes[index] = sources
                layer = nn.Identity()
                out_channels = sum(channels[i + 1] for i in sources)
                grid = grids[sources[0] + 1]
            elif kind == "yolo":
                layer = _Yolo(section, self.input_size, grids[-1])
                expected = layer.anchors.shape[3] * (5 + layer.classes)
                if channels[-1] != expected:
                    raise ValueError(f"yolo layer {index} needs {expected} input channels, got {channels[-1]}")
                out_channels, grid = channels[-1], grids[-1]
            else:
                raise ValueError(f"unsupported darknet layer [{kind}]")
            self.layers.append(layer)
            channels.append(out_channels)
            grids.append(grid)

    def load_weights(self, data: bytes) -> None:
        """Fill the convolutions from darknet's ``.weights`` bytes; ValueError when the sizes disagree."""
        major, minor = np.frombuffer(data[:8], dtype=np.int32)
        header = 20 if major * 10 + minor >= 2 else 16  # the "seen" counter became 64-bit in 0.2
        weights = np.frombuffer(data[header:], dtype=np.float32)
        offset = 0
        for layer in self.layers:
            if isinstance(layer, _Convolution):
                offset = layer.load(weights, offset)
        if offset != weights.size:
            raise ValueError(f"the weights file holds {weights.size} values, the cfg needs {offset}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs: list[torch.Tensor] = []
        detections: list[torch.Tensor] = []
        for index, layer in enumerate(self.layers):
            if index in self.routes:
                sources = [outputs[i] for i in self.routes[index]]
                x = sources[0] if len(sources) == 1 else torch.cat(sources, dim=1)
            elif isinstance(layer, _Yolo):
                detections.append(layer(x))
            else:
                x = layer(x)
            outputs.append(x)
        return torch.cat(detections, dim=1)
