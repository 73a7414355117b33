"""The real photographs that ship inside scikit-image and scikit-learn, with what is truly in them.

They are the evaluation set of the real-world path (``make eval``) and the photos the
pipeline tests upload. ``subject`` lists the words, in each language, any one of which
names the photo's main subject; ``contents`` lists everything a careful viewer sees
(hand-written), against which the names the models give are scored.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class RealPhoto:
    """One photograph and the hand-written truth about it."""

    name: str
    source: str  # licences: docs/model_card.md
    subject: dict[str, tuple[str, ...]]
    contents: dict[str, tuple[str, ...]]

    def pixels(self) -> np.ndarray:
        """HxWx3 uint8 RGB pixels."""
        return _LOADERS[self.name]()

    def jpeg(self, quality: int = 92) -> bytes:
        """The photo encoded as JPEG, as an upload platform would send it."""
        buffer = io.BytesIO()
        Image.fromarray(self.pixels()).save(buffer, format="JPEG", quality=quality)
        return buffer.getvalue()


def _skimage(name: str):
    def load() -> np.ndarray:
        from skimage import data

        image = data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()
        return np.ascontiguousarray(image[..., :3])

    return load


def _sklearn(name: str):
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image

        return np.ascontiguousarray(load_sample_image(f"{name}.jpg"))

    return load


_LOADERS = {
    **{name: _skimage(name) for name in ("astronaut", "chelsea", "coffee", "rocket", "motorcycle")},
    **{name: _sklearn(name) for name in ("china", "flower")},
}

REAL_PHOTOS: tuple[RealPhoto, ...] = (
    RealPhoto(
        "astronaut",
        "scikit-image data.astronaut",
        subject={"en": ("person", "astronaut", "woman"), "ko": ("사람", "우주비행사", "여성")},
        contents={
            "en": ("person", "woman", "astronaut", "spacesuit", "flag", "space shuttle"),
            "ko": ("사람", "여성", "우주비행사", "우주복", "깃발", "우주왕복선"),
        },
    ),
    RealPhoto(
        "chelsea",
        "scikit-image data.chelsea",
        subject={"en": ("cat", "tabby", "kitten"), "ko": ("고양이",)},
        contents={"en": ("cat", "tabby cat"), "ko": ("고양이", "얼룩고양이")},
    ),
    RealPhoto(
        "coffee",
        "scikit-image data.coffee",
        subject={"en": ("coffee", "cup", "espresso", "mug"), "ko": ("커피", "컵", "에스프레소", "머그")},
        contents={
            "en": ("coffee", "espresso", "cup", "coffee mug", "saucer", "spoon", "table"),
            "ko": ("커피", "에스프레소", "컵", "머그", "받침", "숟가락", "탁자"),
        },
    ),
    RealPhoto(
        "rocket",
        "scikit-image data.rocket",
        subject={"en": ("rocket", "missile", "space shuttle"), "ko": ("로켓", "미사일", "우주왕복선")},
        contents={
            "en": ("rocket", "missile", "launch pad", "tower", "sky", "space shuttle"),
            "ko": ("로켓", "미사일", "발사대", "탑", "하늘", "우주왕복선"),
        },
    ),
    RealPhoto(
        "motorcycle",
        "scikit-image data.stereo_motorcycle (left view)",
        subject={"en": ("motorcycle", "motorbike", "moped", "scooter"), "ko": ("오토바이", "모터사이클", "모페드", "스쿠터")},
        contents={
            "en": ("motorcycle", "moped", "scooter", "wheel", "helmet", "crash helmet", "garage"),
            "ko": ("오토바이", "모페드", "스쿠터", "바퀴", "헬멧", "차고"),
        },
    ),
    RealPhoto(
        "china",
        "scikit-learn sample image china.jpg",
        subject={"en": ("palace", "temple", "building", "pagoda"), "ko": ("궁전", "사원", "건물", "탑")},
        contents={
            "en": ("palace", "temple", "building", "pagoda", "roof", "tree", "sky", "monastery"),
            "ko": ("궁전", "사원", "건물", "탑", "지붕", "나무", "하늘", "수도원"),
        },
    ),
    RealPhoto(
        "flower",
        "scikit-learn sample image flower.jpg",
        subject={"en": ("flower", "daisy"), "ko": ("꽃", "데이지")},
        contents={"en": ("flower", "daisy", "petal", "leaf"), "ko": ("꽃", "데이지", "꽃잎", "잎")},
    ),
)
