"""Draw a Scene in one of three styles: photo-like, flat illustration, line-art graphic."""

from __future__ import annotations

import io
import math
import random

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from captioner.scenes import Scene, SceneObject
from captioner.vocabulary import BACKGROUNDS, RGB

SUPERSAMPLE = 4  # draw large, then downscale: anti-aliased edges


def _outline(obj: SceneObject, scale: float) -> list[tuple[float, float]] | None:
    """Polygon of a shape (None for a circle), in supersampled pixels."""
    cx, cy, r = obj.x * scale, obj.y * scale, obj.radius * scale
    angle = math.radians(obj.rotation)
    if obj.shape == "square":
        corners = [(-1, -1), (1, -1), (1, 1), (-1, 1)]
        points = [(x * r * 0.85, y * r * 0.85) for x, y in corners]
    elif obj.shape == "triangle":
        points = [(r * math.cos(a), r * math.sin(a)) for a in (math.radians(d) for d in (-90, 30, 150))]
    elif obj.shape == "star":
        points = []
        for i in range(10):
            radius = r if i % 2 == 0 else r * 0.45
            a = math.radians(-90 + 36 * i)
            points.append((radius * math.cos(a), radius * math.sin(a)))
    else:
        return None
    cos, sin = math.cos(angle), math.sin(angle)
    return [(cx + x * cos - y * sin, cy + x * sin + y * cos) for x, y in points]


def draw_shape(draw: ImageDraw.ImageDraw, obj: SceneObject, scale: float, fill, outline, width: int) -> None:
    """Draw one object (``scale`` pixels per canvas pixel)."""
    polygon = _outline(obj, scale)
    if polygon is None:
        r = obj.radius * scale
        box = (obj.x * scale - r, obj.y * scale - r, obj.x * scale + r, obj.y * scale + r)
        draw.ellipse(box, fill=fill, outline=outline, width=width)
    else:
        draw.polygon(polygon, fill=fill, outline=outline, width=width)


def _shade(colour: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    return tuple(int(max(0, min(255, c * factor))) for c in colour)


def render(scene: Scene, seed: int) -> Image.Image:
    """The RGB image of ``scene``; ``seed`` drives texture, lighting, blur and noise."""
    rng = random.Random(seed)
    scale = SUPERSAMPLE
    size = (scene.width * scale, scene.height * scale)
    base = BACKGROUNDS[scene.background]
    if scene.style == "photo":
        image = _photo_background(base, size, rng)
    else:
        image = Image.new("RGB", size, base)
    draw = ImageDraw.Draw(image)
    for obj in scene.objects:
        colour = RGB[obj.colour]
        if scene.style == "photo":
            shadow = SceneObject(obj.shape, obj.colour, obj.size, obj.x + 1.5, obj.y + 2.0, obj.radius, obj.rotation)
            draw_shape(draw, shadow, scale, fill=_shade(base, 0.6), outline=None, width=0)
            draw_shape(draw, obj, scale, fill=_shade(colour, rng.uniform(0.85, 1.05)), outline=None, width=0)
            highlight = SceneObject(obj.shape, obj.colour, obj.size, obj.x - obj.radius * 0.2, obj.y - obj.radius * 0.2, obj.radius * 0.45, obj.rotation)
            draw_shape(draw, highlight, scale, fill=_shade(colour, 1.12) if obj.colour != "black" else (60, 60, 60), outline=None, width=0)
        elif scene.style == "illustration":
            draw_shape(draw, obj, scale, fill=colour, outline=(20, 20, 20) if obj.colour != "black" else (90, 90, 90), width=2 * scale)
        else:  # line art: outlines only
            draw_shape(draw, obj, scale, fill=None, outline=colour, width=3 * scale)
    image = image.resize((scene.width, scene.height), Image.LANCZOS)
    if scene.style == "photo":
        image = _photo_finish(image, rng)
    return image


def _photo_background(base: tuple[int, int, int], size: tuple[int, int], rng: random.Random) -> Image.Image:
    width, height = size
    top, bottom = _shade(base, rng.uniform(1.05, 1.2)), _shade(base, rng.uniform(0.75, 0.9))
    ramp = np.linspace(0, 1, height)[:, None, None]
    pixels = (1 - ramp) * np.array(top) + ramp * np.array(bottom)
    pixels = np.broadcast_to(pixels, (height, width, 3)).copy()
    texture = np.random.default_rng(rng.getrandbits(32)).normal(0, 6, (height // 8, width // 8, 1))
    pixels += np.kron(texture, np.ones((8, 8, 1)))[:height, :width]
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _photo_finish(image: Image.Image, rng: random.Random) -> Image.Image:
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.9)))
    noise = np.random.default_rng(rng.getrandbits(32)).normal(0, rng.uniform(3, 8), (image.height, image.width, 3))
    image = Image.fromarray(np.clip(np.asarray(image, dtype=np.float32) + noise, 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=rng.randint(35, 75))
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def object_mask(scene: Scene) -> np.ndarray:
    """uint8 [height, width]: 1 + the index of the object covering each pixel, 0 for background.

    Objects count as filled in every style (a line-art outline encloses its object).
    """
    mask = Image.new("L", (scene.width, scene.height), 0)
    draw = ImageDraw.Draw(mask)
    for index, obj in enumerate(scene.objects):
        draw_shape(draw, obj, 1, fill=index + 1, outline=None, width=0)
    return np.asarray(mask)
