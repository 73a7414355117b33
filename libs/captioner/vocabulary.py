"""The closed vocabulary of generated scenes, with English and Korean words."""

from __future__ import annotations

SHAPES = ("circle", "square", "triangle", "star")
COLOURS = ("red", "green", "blue", "yellow", "orange", "purple", "white", "black")
SIZES = ("small", "large")
STYLES = ("photo", "illustration", "lineart")
LANGUAGES = ("en", "ko")

RGB = {
    "red": (220, 30, 35),
    "green": (30, 160, 60),
    "blue": (35, 80, 215),
    "yellow": (245, 215, 25),
    "orange": (245, 130, 20),
    "purple": (140, 50, 170),
    "white": (250, 250, 250),
    "black": (15, 15, 15),
}

# Backgrounds chosen so that every object colour stays visible on at least some of them.
BACKGROUNDS = {
    "gray": (128, 128, 128),
    "beige": (225, 210, 180),
    "sky": (170, 205, 235),
    "navy": (30, 40, 80),
    "mint": (185, 230, 205),
}

KO_SHAPES = {"circle": "원", "square": "사각형", "triangle": "삼각형", "star": "별"}
KO_COLOURS = {
    "red": "빨간",
    "green": "초록",
    "blue": "파란",
    "yellow": "노란",
    "orange": "주황",
    "purple": "보라",
    "white": "흰",
    "black": "검은",
}
KO_SIZES = {"small": "작은", "large": "큰"}
KO_COUNTS = {1: "한", 2: "두", 3: "세", 4: "네"}
KO_BACKGROUNDS = {"gray": "회색", "beige": "베이지색", "sky": "하늘색", "navy": "남색", "mint": "민트색"}
KO_STYLES = {"photo": "사진", "illustration": "일러스트", "lineart": "선화"}

EN_COUNTS = {1: "a", 2: "two", 3: "three", 4: "four"}
EN_SIZE_WORDS = {"small": ("small", "little"), "large": ("large", "big")}
EN_STYLE_PREFIXES = {
    "photo": ("a photo of", "a photograph of", "a picture of"),
    "illustration": ("an illustration of", "a flat illustration of", "a cartoon of"),
    "lineart": ("a line drawing of", "a sketch of", "an outline drawing of"),
}
KO_STYLE_SUFFIXES = {
    "photo": ("사진", "사진이다"),
    "illustration": ("일러스트", "그림"),
    "lineart": ("선화", "스케치"),
}
