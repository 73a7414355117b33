"""Images that are not generated scenes: the counter-examples the scene-world router learns from.

Printed text (English and Korean words of the label tables, one line to paragraphs,
banners, documents), interface panels and tables with text, plain colours, gradients,
noise, and the offline sample images of scikit-image, cropped, flipped and resized.
The photos of the real-photo evaluation set are never used, and neither are drawings of
shapes: a simple graphic of coloured shapes belongs to the scene world.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from captioner.vocabulary import BACKGROUNDS
from perception.labels import imagenet_labels

INKS = ("dark", "light", "colour")
LANGUAGES = ("en", "ko")
# Backgrounds text is printed on: the scene world's own, and paper, screen and poster colours.
PAPERS = (*BACKGROUNDS.values(), (255, 255, 255), (245, 242, 235), (250, 245, 230), (240, 240, 240), (200, 200, 200),
          (30, 30, 30), (0, 0, 0))
# scikit-image samples that load without a download, less the real-photo evaluation set
# (astronaut, chelsea alias cat, coffee, rocket, stereo_motorcycle), the pictures that are
# coloured shapes (colorwheel and logo are discs, checkerboard is a grid of squares) and
# binary_blobs (drawn anew at random on every call).
SAMPLE_PHOTOS = ("brick", "camera", "cell", "clock", "coins", "grass", "gravel", "horse", "hubble_deep_field",
                 "immunohistochemistry", "lfw_subset", "microaneurysms", "moon", "page", "retina",
                 "shepp_logan_phantom", "text")
_EN_EXTRA = ("the", "and", "of", "for", "with", "new", "open", "sale", "today", "free", "now", "menu", "price", "best",
             "summer", "winter", "grand", "opening", "coffee", "shop", "hours", "welcome", "notice", "report", "total")
_KO_EXTRA = ("할인", "행사", "오늘", "영업시간", "안내", "신제품", "무료", "전문점", "환영합니다", "공지", "가격", "메뉴",
             "그리고", "입니다", "있습니다", "보고서", "합계", "개업", "여름", "겨울")


@cache
def _words(language: str) -> tuple[str, ...]:
    """Sorted, so that a seed draws the same words in every process (string hashes vary)."""
    labels = imagenet_labels()
    if language == "en":
        return tuple(sorted({*(label.tag_en for label in labels), *(label.noun_en for label in labels), *_EN_EXTRA}))
    return tuple(sorted({*(label.tag_ko for label in labels), *(label.noun_ko for label in labels), *_KO_EXTRA}))


@cache
def _sample_photos(name: str) -> tuple[Image.Image, ...]:
    """The sample's pictures (one, or a stack of small ones), greyscale ones in mode L."""
    from skimage import data

    pixels = np.asarray(getattr(data, name)())
    if pixels.dtype == bool or pixels.dtype.kind == "f":  # the horse's mask, the phantom's densities
        pixels = (pixels.astype(np.float64) / max(float(pixels.max()), 1e-9) * 255).astype(np.uint8)
    if pixels.ndim == 3 and pixels.shape[-1] in (3, 4):
        return (Image.fromarray(np.ascontiguousarray(pixels[..., :3])),)
    return tuple(Image.fromarray(picture) for picture in (pixels if pixels.ndim == 3 else pixels[None]))


class NotSceneSampler:
    """Draws images of every kind above from a seed; ``korean_font`` is a TrueType font with Hangul."""

    def __init__(self, seed: int, korean_font: Path) -> None:
        self.rng = random.Random(seed)
        self.korean_font = korean_font
        self.families: dict[str, tuple[float, Callable[[], Image.Image]]] = {
            "text": (0.30, self.text),
            "document": (0.10, self.document),
            "interface": (0.10, self.interface),
            "photo": (0.25, self.photo),
            "plain": (0.07, self.plain),
            "gradient": (0.08, self.gradient),
            "noise": (0.10, self.noise),
        }

    def sample(self) -> tuple[str, Image.Image]:
        """(family, RGB image) of a family drawn by its weight, re-encoded as an upload may be."""
        names = tuple(self.families)
        family = self.rng.choices(names, weights=[self.families[name][0] for name in names])[0]
        return family, self.encoded(self.families[family][1]())

    def encoded(self, image: Image.Image) -> Image.Image:
        """The image as uploaded: unchanged (a lossless format) or after a JPEG or WebP round trip."""
        fmt = self.rng.choice(("PNG", "JPEG", "WEBP"))
        if fmt == "PNG":
            return image
        buffer = io.BytesIO()
        image.save(buffer, format=fmt, quality=self.rng.randint(60, 95), **({"method": 0} if fmt == "WEBP" else {}))
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            return decoded.convert("RGB")

    # text

    def font(self, language: str, size: int) -> ImageFont.FreeTypeFont:
        if language == "ko" or self.rng.random() < 0.3:
            return ImageFont.truetype(str(self.korean_font), size)
        return ImageFont.load_default(size=size)

    def phrase(self, language: str, words: int) -> str:
        rng = self.rng
        chosen = [rng.choice(_words(language)) for _ in range(words)]
        if rng.random() < 0.2:
            price = f"${rng.randint(1, 99)}.{rng.randint(0, 99):02d}" if language == "en" else f"{rng.randint(1, 99)},000원"
            date = f"{rng.randint(2000, 2030)}.{rng.randint(1, 12):02d}.{rng.randint(1, 28):02d}"
            number = rng.choice((f"{rng.randint(5, 70)}%", price, date, f"{rng.randint(10, 99)}-{rng.randint(1000, 9999)}"))
            chosen.insert(rng.randrange(len(chosen) + 1), number)
        text = " ".join(chosen)
        if language == "en":
            text = text.upper() if rng.random() < 0.3 else text[:1].upper() + text[1:]
        return text

    def paper_and_ink(self, ink: str | None = None) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        """A background colour and a legible text colour of the ``ink`` family (dark, light or colour)."""
        rng = self.rng
        paper = rng.choice(PAPERS) if rng.random() < 0.8 else tuple(rng.randint(0, 255) for _ in range(3))
        bright = sum(paper) / 3 > 110
        ink = ink or rng.choice(INKS if bright else ("light", "colour"))
        for _ in range(100):
            if ink == "dark":
                level = rng.randint(0, 70)
                colour = (level, level, level + rng.randint(0, 40))
            elif ink == "light":
                level = rng.randint(215, 255)
                colour = (level, level, level)
            else:
                colour = tuple(rng.randint(0, 255) for _ in range(3))
            if np.linalg.norm(np.subtract(colour, paper)) > 120:
                return paper, colour
        return ((255, 255, 255), (0, 0, 0)) if ink == "dark" else ((0, 0, 0), (255, 255, 255))

    def text(self, language: str | None = None, ink: str | None = None) -> Image.Image:
        """One to several lines of 16-120 px text: signs, banners, captions, short notes."""
        rng = self.rng
        language = language or rng.choice(LANGUAGES)
        size = int(round(16 * (120 / 16) ** rng.random()))
        font = self.font(language, size)
        lines = [self.phrase(language, rng.randint(1, 5)) for _ in range(rng.choice((1, 1, 2, 2, 3, 4, 6)))]
        paper, colour = self.paper_and_ink(ink)
        spacing = int(size * rng.uniform(1.1, 1.8))
        widths = [font.getlength(line) for line in lines]
        block = (max(widths), spacing * len(lines))
        if rng.random() < 0.7:  # the canvas fits the text with a margin
            margin = rng.uniform(0.05, 0.8)
            canvas = (int(block[0] * (1 + margin)) + 8, int(block[1] * (1 + margin * rng.uniform(0.5, 3))) + 8)
        else:  # a fixed canvas that may cut the text
            canvas = (rng.randint(96, 1200), rng.randint(96, 900))
        canvas = (min(canvas[0], 2400), min(canvas[1], 1600))
        image = Image.new("RGB", canvas, paper)
        draw = ImageDraw.Draw(image)
        left = max(0, (canvas[0] - block[0]) * rng.uniform(0, 1))
        top = max(0, (canvas[1] - block[1]) * rng.uniform(0, 1))
        centred = rng.random() < 0.5
        for row, (line, width) in enumerate(zip(lines, widths)):
            x = left + (block[0] - width) / 2 if centred else left
            draw.text((x, top + row * spacing), line, fill=colour, font=font)
        return image

    def document(self) -> Image.Image:
        """A page of paragraphs in 12-28 px text, sometimes under a heading."""
        rng = self.rng
        language = rng.choice(LANGUAGES)
        width, height = rng.randint(200, 1200), rng.randint(200, 1400)
        paper, colour = self.paper_and_ink(rng.choice(("dark", "dark", "dark", "colour")) if rng.random() < 0.9 else "light")
        image = Image.new("RGB", (width, height), paper)
        draw = ImageDraw.Draw(image)
        size = rng.randint(12, 28)
        margin = int(width * rng.uniform(0.03, 0.15))
        y = margin
        if rng.random() < 0.6:
            heading = self.font(language, int(size * rng.uniform(1.5, 2.5)))
            draw.text((margin, y), self.phrase(language, rng.randint(2, 5)), fill=colour, font=heading)
            y += int(size * 3.5)
        font = self.font(language, size)
        while y < height - margin:
            line = self.phrase(language, rng.randint(2, 12))
            draw.text((margin, y), line, fill=colour, font=font)
            y += int(size * (rng.uniform(1.3, 1.7) if rng.random() > 0.15 else 3))  # paragraph breaks
        return image

    def interface(self) -> Image.Image:
        """A screen of a title bar, a table of cells or a row of labelled buttons, all with text."""
        rng = self.rng
        language = rng.choice(LANGUAGES)
        width, height = rng.randint(240, 1400), rng.randint(180, 1000)
        paper, colour = self.paper_and_ink("dark" if rng.random() < 0.75 else "light")
        image = Image.new("RGB", (width, height), paper)
        draw = ImageDraw.Draw(image)
        size = rng.randint(12, 32)
        font = self.font(language, size)
        bar = int(size * 2)
        accent = tuple(rng.randint(0, 255) for _ in range(3))
        draw.rectangle((0, 0, width, bar), fill=accent)
        title_ink = (255, 255, 255) if sum(accent) < 380 else (0, 0, 0)
        draw.text((size // 2, size // 2), self.phrase(language, rng.randint(1, 4)), fill=title_ink, font=font)
        rows, columns = rng.randint(2, 12), rng.randint(1, 6)
        cell_w, cell_h = (width - 20) / columns, max(size * 1.8, (height - bar - 20) / rows)
        line = tuple(int(c * 0.6 + 100) for c in colour)
        buttons = rng.random() < 0.3
        for row in range(rows):
            top = bar + 10 + row * cell_h
            if top + cell_h > height:
                break
            for column in range(columns):
                left = 10 + column * cell_w
                box = (left, top, left + cell_w - (8 if buttons else 0), top + cell_h - (8 if buttons else 0))
                if buttons:
                    fill = accent if rng.random() < 0.3 else None
                    draw.rounded_rectangle(box, radius=size // 2, outline=line, fill=fill, width=2)
                else:
                    draw.rectangle(box, outline=line, width=1)
                draw.text((left + size // 3, top + size // 3), self.phrase(language, rng.randint(1, 3)), fill=colour, font=font)
        return image

    # pictures without text

    def photo(self, name: str | None = None) -> Image.Image:
        """A crop of a scikit-image sample, flipped, resized, tinted when grey, as a camera or scan gives it."""
        rng = self.rng
        image = rng.choice(_sample_photos(name or rng.choice(SAMPLE_PHOTOS)))
        side = rng.uniform(0.4, 1.0)
        width, height = int(image.width * side), int(image.height * rng.uniform(max(0.4, side * 0.6), 1.0))
        left, top = rng.randint(0, image.width - width), rng.randint(0, image.height - height)
        image = image.crop((left, top, left + width, top + height))
        if rng.random() < 0.5:
            image = image.transpose(Image.FLIP_LEFT_RIGHT)
        if image.mode == "L" and rng.random() < 0.3:
            tint = np.array([rng.uniform(0.6, 1.0) for _ in range(3)])
            image = Image.fromarray((np.asarray(image)[..., None] * tint).astype(np.uint8))
        target = rng.randint(64, 900) / max(image.size)
        return image.convert("RGB").resize((max(8, int(image.width * target)), max(8, int(image.height * target))), Image.BICUBIC)

    def _canvas_size(self) -> tuple[int, int]:
        return self.rng.randint(64, 900), self.rng.randint(64, 700)

    def _colour(self) -> tuple[int, int, int]:
        rng = self.rng
        return rng.choice(PAPERS) if rng.random() < 0.5 else tuple(rng.randint(0, 255) for _ in range(3))

    def plain(self) -> Image.Image:
        """One colour, sometimes with a faint sensor noise."""
        width, height = self._canvas_size()
        pixels = np.broadcast_to(np.array(self._colour(), dtype=np.float32), (height, width, 3))
        if self.rng.random() < 0.4:
            pixels = pixels + np.random.default_rng(self.rng.getrandbits(32)).normal(0, self.rng.uniform(1, 6), pixels.shape)
        return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))

    def gradient(self) -> Image.Image:
        """A linear gradient at any angle or a radial one between two colours."""
        rng = self.rng
        width, height = self._canvas_size()
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        if rng.random() < 0.6:
            angle = rng.uniform(0, 2 * np.pi)
            ramp = xs * np.cos(angle) + ys * np.sin(angle)
        else:
            cx, cy = rng.uniform(0, width), rng.uniform(0, height)
            ramp = np.hypot(xs - cx, ys - cy)
        ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
        start, end = np.array(self._colour(), dtype=np.float32), np.array(self._colour(), dtype=np.float32)
        pixels = start + ramp[..., None] * (end - start)
        return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))

    def noise(self) -> Image.Image:
        """Grain, coloured static, blurred clouds or salt and pepper over a colour."""
        rng = self.rng
        generator = np.random.default_rng(rng.getrandbits(32))
        width, height = self._canvas_size()
        base = np.array(self._colour(), dtype=np.float32)
        kind = rng.choice(("grain", "static", "clouds", "salt"))
        if kind == "grain":
            pixels = base + generator.normal(0, rng.uniform(10, 60), (height, width, 1))
        elif kind == "static":
            pixels = generator.uniform(0, 255, (height, width, 3))
        elif kind == "clouds":
            cells = generator.uniform(0, 255, (max(2, height // 16), max(2, width // 16), 3)).astype(np.uint8)
            clouds = Image.fromarray(cells).resize((width, height), Image.BICUBIC)
            pixels = np.asarray(clouds.filter(ImageFilter.GaussianBlur(rng.uniform(2, 12))), dtype=np.float32)
        else:
            pixels = np.broadcast_to(base, (height, width, 3)).copy()
            dots = generator.random((height, width)) < rng.uniform(0.01, 0.2)
            pixels[dots] = generator.choice([0.0, 255.0], size=(int(dots.sum()), 1))
        return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def not_scene_images(count: int, seed: int, korean_font: Path) -> list[Image.Image]:
    """``count`` images of the families above, drawn by weight."""
    sampler = NotSceneSampler(seed, korean_font)
    return [sampler.sample()[1] for _ in range(count)]
