"""What an index row is made of: the entry of a verdict, its full-text terms and its embedding text."""

from __future__ import annotations

from captioning_events.v1.caption_pb2 import Caption
from captioning_events.v1.common_pb2 import Box, DetectedObjects, ImageTag, ModelInfo, ObjectRef, TextLine
from captioning_events.v1.moderation_pb2 import ModerationVerdict, Verdict
from services.indexing.index_store import IndexEntry, document_terms, embedding_text
from services.indexing.stage import entry_of

SHOP = IndexEntry(
    image_id="shop",
    image_bucket="captioning",
    image_key="originals/shop.jpg",
    caption_model="captioner:2",
    caption_en="a photo of a shop front",
    caption_ko="가게 앞 사진",
    keywords=["shop", "가게"],
    hashtags=["#shop", "#가게"],
    tags=["toyshop", "장난감 가게"],
    objects=["person", "사람", "bicycle", "자전거"],
    text=["GRAND OPENING SALE", "할인 행사를 합니다"],
)


def test_document_terms_hold_every_field_with_korean_as_morphemes() -> None:
    terms = document_terms(SHOP).split()
    for term in ("photo", "shop", "가게", "사진", "toyshop", "장난감", "person", "사람", "bicycle", "자전거", "GRAND", "SALE", "할인", "행사"):
        assert term in terms, term
    assert "행사를" not in terms and "합니다" not in terms


def test_embedding_text_is_the_caption_then_labels_once_then_text_lines() -> None:
    text = embedding_text(SHOP)
    assert text == (
        "a photo of a shop front. shop, 가게, toyshop, 장난감 가게, person, 사람, bicycle, 자전거. GRAND OPENING SALE 할인 행사를 합니다"
    )
    assert embedding_text(IndexEntry("k", "b", "k.png", "m:1", caption_ko="고양이 사진", objects=["cat", "고양이"])) == "고양이 사진. cat, 고양이"
    assert embedding_text(IndexEntry("k", "b", "k.png", "m:1", caption_en="a cat", keywords=["cat"], objects=["cat"])) == "a cat. cat"


def test_entry_of_an_approved_verdict_carries_tags_objects_and_text_lines() -> None:
    box = Box(x=0.1, y=0.2, width=0.3, height=0.1, score=0.9)
    verdict = ModerationVerdict(
        image_id="shop",
        image=ObjectRef(bucket="captioning", key="originals/shop.jpg"),
        verdict=Verdict.VERDICT_APPROVE,
        captions=[
            Caption(language="en", text=SHOP.caption_en, keywords=["shop"], hashtags=["#shop"]),
            Caption(language="ko", text=SHOP.caption_ko, keywords=["가게"], hashtags=["#가게"]),
        ],
        caption_model=ModelInfo(name="captioner", version="2"),
        tags=[ImageTag(label="toyshop", label_ko="장난감 가게", score=0.6), ImageTag(label="toyshop", label_ko="장난감 가게", score=0.1)],
        objects=[
            DetectedObjects(label="person", label_ko="사람", count=2, score=0.8, boxes=[box, box]),
            DetectedObjects(label="bicycle", label_ko="", count=1, score=0.5, boxes=[box]),
        ],
        text_lines=[TextLine(text="GRAND OPENING SALE", score=0.9, box=box), TextLine(text="  ", score=0.2, box=box)],
    )
    entry = entry_of(verdict)
    assert (entry.image_id, entry.image_bucket, entry.image_key, entry.caption_model) == ("shop", "captioning", "originals/shop.jpg", "captioner:2")
    assert (entry.caption_en, entry.caption_ko) == (SHOP.caption_en, SHOP.caption_ko)
    assert entry.keywords == ["shop", "가게"] and entry.hashtags == ["#shop", "#가게"]
    assert entry.tags == ["toyshop", "장난감 가게"]
    assert entry.objects == ["person", "사람", "bicycle"]
    assert entry.text == ["GRAND OPENING SALE"]


def test_entry_of_a_verdict_without_perception_has_empty_fields() -> None:
    verdict = ModerationVerdict(image_id="scene", verdict=Verdict.VERDICT_APPROVE, captions=[Caption(language="en", text="two red circles")])
    entry = entry_of(verdict)
    assert entry.caption_en == "two red circles" and entry.tags == [] and entry.objects == [] and entry.text == []
