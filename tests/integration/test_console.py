"""The web console in a real Chromium (Debian's package, driven by Playwright) against the real pipeline.

Each test signs in with one of the session's keys and works the console as a person
would. The screenshots of each screen, at 1280 px and at a phone's 390 px, go to
``.local/screenshots/``; ``make screenshots`` writes them to ``docs/screenshots/`` instead.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from PIL import Image
from playwright.sync_api import Browser, Page, expect, sync_playwright

from captioning_common.events import caption_to_dict, iso, timestamp_now
from captioning_common.kafka import EventProducer
from captioning_common.records import ImageRecords, original_key
from captioning_common.storage import ObjectStore
from captioning_events.v1.caption_pb2 import Caption, CaptionGenerated
from captioning_events.v1.common_pb2 import ModelInfo, ObjectRef
from captioning_events.v1.image_pb2 import ImageSubmitted
from localinfra.pipeline import PipelineService
from localinfra.settings import free_port
from perception.real_photos import REAL_PHOTOS
from services.ingest.validation import image_id_of
from tests.conftest import REPO_ROOT
from tests.integration.pipeline_client import (

    SESSION_SALT,
    end_offsets,
    read_since,
    salted,
    scene_images,
    search,
    upload,
    upload_all,
    wait_for,
    wait_until_accepted,
)

TAG = "console"  # salts this module's uploads: ids no other test module shares


CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("SCREENSHOTS_DIR", REPO_ROOT / ".local" / "screenshots"))
SIZES = {"desktop": (1280, 860), "phone": (390, 844)}
OPERATOR, OPERATOR_KEY = "test-operator", "test-operator-key"
STEPS = ("received", "captioned", "moderated", "indexed")
PIPELINE_S = 120_000  # milliseconds a card may take to reach its last step
VISIBLE_IMAGES_LOADED = """() => [...document.images].filter((img) => { const box = img.getBoundingClientRect();
    return img.offsetParent !== null && box.bottom > 0 && box.top < innerHeight; }).every((img) => img.complete)"""


def photo_jpeg(name: str, quality: int) -> bytes:
    """A real photo as salted JPEG bytes (a quality no other test uploads it with: an id of its own)."""
    photo = next(photo for photo in REAL_PHOTOS if photo.name == name)
    return salted(Image.fromarray(photo.pixels()), "JPEG", tag=TAG, quality=quality)


@pytest.fixture(scope="module")
def console(servers, pipeline) -> Iterator[str]:
    """The console service on a free port, with the session pipeline's keys and an operator of its own."""
    env = pipeline.env | {"CAPTIONING_CONSOLE_PORT": str(free_port()), "CAPTIONING_OPERATOR_KEYS": f"{OPERATOR}={OPERATOR_KEY}"}
    service = servers.start_extra(PipelineService(servers.config, "console", env=env, instance="test-console"))
    yield f"http://127.0.0.1:{service.port}"
    service.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make chromium` installs Debian's chromium package")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser: Browser, console: str) -> Iterator[Page]:
    context = browser.new_context(base_url=console, viewport=dict(zip(("width", "height"), SIZES["desktop"])))
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == [], f"script errors in the page: {errors}"


def sign_in(page: Page, key: str) -> None:
    page.goto("/")
    page.get_by_label("Key", exact=True).fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#who")).to_be_visible()


def screenshot(page: Page, name: str) -> None:
    """``<name>-desktop.png`` and ``-phone.png`` in SCREENSHOTS (palette PNGs, small enough to commit)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for size, (width, height) in SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_function(VISIBLE_IMAGES_LOADED)
        shot = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
        shot.quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(SCREENSHOTS / f"{name}-{size}.png", optimize=True)
    page.set_viewport_size(dict(zip(("width", "height"), SIZES["desktop"])))


def api(console: str, path: str, key: str | None) -> requests.Response:
    return requests.get(f"{console}{path}", headers={"X-API-Key": key} if key else {}, timeout=30)


def test_three_uploads_move_live_to_indexed_with_both_captions(page: Page, pipeline) -> None:
    images = {"cat.jpg": photo_jpeg("chelsea", 87), "coffee.jpg": photo_jpeg("coffee", 87), "scene.png": scene_images(1, seed=12012, tag=TAG)[0]}
    ids = {name: image_id_of(data) for name, data in images.items()}
    calls: list[str] = []
    page.on("request", lambda request: calls.append(f"{request.method} {request.url.split('?')[0].split(':', 2)[-1]}"))
    sign_in(page, pipeline.API_KEY)
    expect(page.get_by_role("heading", name="Upload and watch")).to_be_visible()
    # Every status a card shows, in order, as the stream changes it.
    page.evaluate("""() => { window.seen = {};
        new MutationObserver((changes) => { for (const change of changes) { const card = change.target;
            if (card.dataset && card.dataset.id) (window.seen[card.dataset.id] ||= []).push(card.dataset.status); } })
        .observe(document.querySelector('#cards'), {subtree: true, attributes: true, attributeFilter: ['data-status']}); }""")

    page.get_by_label("Choose images").set_input_files(
        [{"name": name, "mimeType": "image/png" if name.endswith(".png") else "image/jpeg", "buffer": data} for name, data in images.items()]
    )

    for name, image_id in ids.items():
        card = page.locator(f'.card[data-id="{image_id}"]')
        expect(card).to_have_attribute("data-status", "indexed", timeout=PIPELINE_S)
        status = pipeline_status(pipeline, image_id)
        for language in ("en", "ko"):
            expect(card.locator(f".caption-{language}")).to_have_text(status["captions"][language]["text"])
            assert status["captions"][language]["text"]
        expect(card.locator("img")).to_have_attribute("alt", status["captions"]["en"]["text"])
        expect(card.locator(".keywords")).to_contain_text(status["keywords"][0])
        expect(card.locator(".hashtags")).to_contain_text(status["hashtags"][0])
        expect(card.locator(".verdict")).to_contain_text("approve")
        expect(card.locator(".steps li.done")).to_have_count(4)
    seen = page.evaluate("window.seen")
    for name, image_id in ids.items():
        order = [STEPS.index(status) for status in seen[image_id]]
        assert order == sorted(order) and seen[image_id][-1] == "indexed", (name, seen[image_id])
    assert any({"captioned", "moderated"} & set(statuses) for statuses in seen.values()), f"no card showed a step between: {seen}"
    # The cards moved on what the server pushed: no status polling, a few stream (re)openings.
    assert not [call for call in calls if call.startswith("GET") and "/api/images/" in call], calls
    assert 1 <= sum("/api/events" in call for call in calls) <= len(images) + 1, calls
    screenshot(page, "upload")


def pipeline_status(pipeline, image_id: str) -> dict:
    response = requests.get(f"{pipeline.ingest_url}/v1/images/{image_id}", headers=pipeline.headers, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def photos(pipeline) -> dict[str, str]:
    """A cat and coffee photo of this module, indexed: name -> id."""
    responses = upload_all(pipeline, [photo_jpeg("chelsea", 86), photo_jpeg("coffee", 86)])
    ids = {"cat": responses[0].json()["id"], "coffee": responses[1].json()["id"]}
    statuses = wait_for(pipeline, list(ids.values()))
    assert {statuses[i]["status"] for i in ids.values()} == {"indexed"}, statuses
    return ids


def test_search_in_korean_and_english_shows_the_right_thumbnail(page: Page, pipeline, photos: dict[str, str]) -> None:
    sign_in(page, pipeline.API_KEY)
    page.get_by_role("link", name="Search").click()
    for query, language, name in (("고양이", "ko", "cat"), ("coffee", "en", "coffee")):
        page.get_by_label("Words, in English or Korean").fill(query)
        page.get_by_label("Captions in").select_option(language)
        page.get_by_role("button", name="Search", exact=True).click()
        result = page.locator(f'.result[data-id="{photos[name]}"]')
        expect(result).to_be_visible()
        thumbnail = result.locator("img")
        expect(thumbnail).to_have_attribute("alt", pipeline_status(pipeline, photos[name])["captions"][language]["text"])
        thumbnail.scroll_into_view_if_needed()
        page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=thumbnail.element_handle())
        if language == "ko":
            screenshot(page, "search")
    page.locator(f'.result[data-id="{photos["coffee"]}"]').click()
    dialog = page.get_by_role("dialog")
    fields = dialog.locator(".record-fields")
    expect(fields).to_contain_text(photos["coffee"])
    expect(fields).to_contain_text("indexed")
    expect(fields).to_contain_text(pipeline_status(pipeline, photos["coffee"])["captions"]["ko"]["text"])
    screenshot(page, "record")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()


def hold_for_review(pipeline, kafka, captions: dict[str, str]) -> str:
    """An indexed image captioned again with ``captions`` that guess a person's attributes: held for review (policy `flag`).

    The caption record and the event are written as the caption service writes them.
    """
    image_id = upload(pipeline, scene_images(1, seed=12112, tag=TAG)[0]).json()["id"]
    version = wait_for(pipeline, [image_id])[image_id]["model"]["version"]
    event = CaptionGenerated(
        image_id=image_id,
        image=ObjectRef(bucket=pipeline.s3.bucket, key=original_key(image_id)),
        captions=[Caption(language=language, text=text, keywords=["triangle"], hashtags=["#triangle"], score=0.9) for language, text in captions.items()],
        model=ModelInfo(name="captioner", version=version),
        generated_at=timestamp_now(),
    )
    records = ImageRecords(ObjectStore(pipeline.s3))
    record = records.get(image_id, "captions")
    records.put(image_id, "captions", record | {"captions": [caption_to_dict(c) for c in event.captions], "generated_at": iso(event.generated_at)})
    producer = EventProducer(kafka, source="test-caption")
    producer.send("captions.generated", event, key=image_id)
    producer.close()
    wait_for(pipeline, [image_id], done=lambda s: s["verdict"] == "review" and s["status"] == "moderated")
    return image_id


def test_a_held_item_approved_in_the_queue_reaches_search(page: Page, pipeline, kafka) -> None:
    caption = "an old man standing beside two little purple triangles"
    image_id = hold_for_review(pipeline, kafka, {"en": caption, "ko": "작은 보라 삼각형 두 개 옆에 서 있는 노인"})
    sign_in(page, pipeline.REVIEWER_KEY)
    page.get_by_role("link", name="Review queue").click()
    item = page.locator(f'.item[data-id="{image_id}"]')
    expect(item).to_be_visible()
    expect(item.locator(".compare")).to_contain_text(caption)
    expect(item.locator(".reasons")).to_contain_text("caption.sensitive_attribute")
    expect(item.locator("img")).to_have_attribute("alt", caption)
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=item.locator("img").element_handle())
    item.focus()
    screenshot(page, "review")

    page.keyboard.press("a")  # approve, from the keyboard
    expect(item).to_have_count(0)
    expect(page.locator("#notice")).to_contain_text(f"Approved {image_id[:12]} as {pipeline.REVIEWER}")
    released = wait_for(pipeline, [image_id], done=lambda s: s["status"] == "indexed" and s["verdict"] == "approve")[image_id]
    assert released["reviewer"] == pipeline.REVIEWER
    page.reload()  # the queue read again: the decided item is gone for good
    expect(page.locator("#review-summary")).not_to_have_text("")
    expect(page.locator(f'.item[data-id="{image_id}"]')).to_have_count(0)

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, pipeline.API_KEY)
    page.get_by_role("link", name="Search").click()
    page.get_by_label("Words, in English or Korean").fill(caption)
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator(f'.result[data-id="{image_id}"] img')).to_have_attribute("alt", caption)


def test_without_a_reviewer_key_there_is_no_queue(page: Page, pipeline, console: str) -> None:
    sign_in(page, pipeline.API_KEY)
    expect(page.get_by_role("link", name="Review queue")).to_be_hidden()
    page.goto("/#review")
    expect(page.get_by_role("heading", name="Not for this key")).to_be_visible()
    expect(page.locator("#denied-text")).to_contain_text("a reviewer key")
    expect(page.locator("#queue .item")).to_have_count(0)
    screenshot(page, "denied")

    by_uploader = api(console, "/api/review-queue", pipeline.API_KEY)
    assert by_uploader.status_code == 403 and by_uploader.json()["error"]["code"] == "forbidden"
    assert api(console, "/api/review-queue", OPERATOR_KEY).status_code == 403
    assert api(console, "/api/review-queue", None).status_code == 401
    assert api(console, "/api/review-queue", "not-a-key").status_code == 401
    assert api(console, "/api/events?queue=true", pipeline.API_KEY).status_code == 403
    assert api(console, "/api/dead-letters", pipeline.REVIEWER_KEY).status_code == 403
    assert api(console, "/api/review-queue", pipeline.REVIEWER_KEY).status_code == 200


def test_a_dead_letter_replayed_from_the_console_completes(page: Page, pipeline, kafka) -> None:
    store = ObjectStore(pipeline.s3)
    client_ref = f"console-{SESSION_SALT}"
    key = f"incoming/{client_ref}.png"
    data = scene_images(1, seed=12212, tag=TAG)[0]
    start = end_offsets(kafka, "images.submitted.dlq")
    producer = EventProducer(kafka, source="test-platform")
    producer.send("images.submitted", ImageSubmitted(object=ObjectRef(bucket=pipeline.s3.bucket, key=key), languages=["en", "ko"], client_ref=client_ref), key=client_ref)
    producer.close()
    deadline = time.monotonic() + 60
    while client_ref not in {k for k, _ in read_since(kafka, "images.submitted.dlq", start)}:
        assert time.monotonic() < deadline, "the submission of a missing object was not dead-lettered"
        time.sleep(0.5)
    store.put(key, data)  # the cause is fixed: the object is there now

    sign_in(page, OPERATOR_KEY)
    expect(page.get_by_role("heading", name="Dead letters")).to_be_visible()
    page.get_by_label("Topic").select_option("images.submitted.dlq")
    row = page.locator(f'#letters tr[data-key="{client_ref}"]')
    expect(row).to_contain_text("object_missing")
    expect(row).to_contain_text("ingest")
    row.get_by_role("checkbox").check()
    shown = row.element_handle()
    page.get_by_role("button", name="Refresh").click()
    page.wait_for_function("row => !row.isConnected", arg=shown)  # the list was read and drawn again
    expect(row.get_by_role("checkbox")).to_be_checked()  # the operator's pick survives a refresh
    screenshot(page, "dead-letters")
    page.get_by_role("button", name="Replay selected").click()
    expect(page.locator("#notice")).to_contain_text("Replayed 1 of 1 to images.submitted")

    image_id = image_id_of(data)
    wait_until_accepted(pipeline, image_id, "the replayed submission")
    status = wait_for(pipeline, [image_id])[image_id]
    assert status["status"] == "indexed" and status["client_ref"] == client_ref
    assert search(pipeline, status["captions"]["en"]["text"], limit=10).json()["results"]
