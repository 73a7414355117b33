"""Hostile input against the running ingest and search APIs.

- schemathesis generates valid and invalid requests from each API's OpenAPI schema and
  runs every check it has (server errors, status codes, content types, response
  bodies and headers against the schema, acceptance of valid and refusal of invalid
  data, missing auth, undeclared methods, stateful sequences along the links);
- mutated JPEG, PNG, WebP and GIF files are uploaded: none gets a 5xx, each gets the
  answer the validator gives in process, and a refused one leaves no original, no
  record and no ``images.uploaded`` event behind.

`make test` runs short versions; `make hostile` (marker ``hostile``) the long ones.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from PIL import Image

from captioning_common.records import ImageRecords, original_key
from captioning_common.storage import ObjectStore
from services.ingest.settings import IngestSettings
from services.ingest.validation import ImageRejected, image_id_of, validate_image
from tests.conftest import REPO_ROOT
from tests.hostile_images import Mutant, mutants
from tests.integration.pipeline_client import end_offsets, read_since, salted

TAG = "hostile"  # salts this module's uploads: ids no other test module shares

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
HOOKS = "tests.integration.schemathesis_hooks"
SHORT_EXAMPLES, SHORT_SEED = 25, 20261122  # `make test`: the same cases every run
FULL_EXAMPLES = 300  # `make hostile`: a new seed each run (printed, for replay)
UPLOADS_SHORT, UPLOADS_FULL, SEED = 200, 1200, 0
# A schema cannot say "these bytes are an image": a schema-valid upload may still be refused for its content.
UPLOAD_ACCEPTABLE = ["2xx", "401", "403", "404", "409", "413", "415", "422", "429", "5xx"]


def schemathesis_config(upload_key: str, reviewer_key: str | None = None) -> str:
    """The run's settings: the upload key everywhere; for the ingest API, a reviewer key on the review route."""
    common = f'headers = {{ X-API-Key = "{upload_key}" }}\n\n[cache]\nenabled = false\n\n'  # no replay store in the working tree
    if reviewer_key is None:
        return common
    statuses = ", ".join(f'"{s}"' for s in UPLOAD_ACCEPTABLE)
    return common + (
        "[[operations]]\n"
        'include-path-regex = "^/v1/reviews/"\n'
        f'headers = {{ X-API-Key = "{reviewer_key}" }}\n\n'
        "[[operations]]\n"
        'include-name = "POST /v1/images"\n'
        f"checks.positive_data_acceptance.expected-statuses = [{statuses}]\n"
    )


def run_schemathesis(base_url: str, config: Path, max_examples: int, seed: int | None, scratch: Path) -> subprocess.CompletedProcess:
    """``schemathesis run`` with every check against ``base_url``'s OpenAPI; its output and exit status."""
    command = [
        str(SCHEMATHESIS), "--config-file", str(config), "run", f"{base_url}/openapi.json",
        "--checks", "all", "--max-examples", str(max_examples), "--workers", "1",
        "--generation-database", "none", "--request-timeout", "60", "--no-color",
    ]  # fmt: skip
    if seed is not None:
        command += ["--seed", str(seed)]
    env = os.environ | {"SCHEMATHESIS_HOOKS": HOOKS, "PYTHONPATH": str(REPO_ROOT), "HYPOTHESIS_STORAGE_DIRECTORY": str(scratch)}
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=1800)


def check_schemathesis(pipeline, api: str, tmp_path: Path, max_examples: int, seed: int | None) -> None:
    config = tmp_path / "schemathesis.toml"
    if api == "ingest":
        url, text = pipeline.ingest_url, schemathesis_config(pipeline.API_KEY, pipeline.reviewer_headers["X-API-Key"])
    else:
        url, text = pipeline.search_url, schemathesis_config(pipeline.API_KEY)
    config.write_text(text)
    run = run_schemathesis(url, config, max_examples, seed, tmp_path / "hypothesis")
    summary = run.stdout[run.stdout.rfind("SUMMARY") :]
    print(f"\nschemathesis {api}: {summary}")
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
    assert "passed" in summary and "generated" in summary  # it did run cases


@pytest.mark.parametrize("api", ["ingest", "search"])
def test_schemathesis_finds_no_failure(pipeline, api: str, tmp_path: Path) -> None:
    check_schemathesis(pipeline, api, tmp_path, SHORT_EXAMPLES, SHORT_SEED)


@pytest.mark.hostile
@pytest.mark.parametrize("api", ["ingest", "search"])
def test_schemathesis_long_run_finds_no_failure(pipeline, api: str, tmp_path: Path) -> None:
    check_schemathesis(pipeline, api, tmp_path, FULL_EXAMPLES, None)


def verdict_in_process(data: bytes, settings: IngestSettings) -> tuple[int | str, str]:
    """(status, error code) of the validator's refusal, or ("accepted", "ok")."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns about corrupt EXIF; the verdict is what counts
            validate_image(data, settings)
    except ImageRejected as exc:
        return exc.http_status, exc.code
    return "accepted", "ok"


def verdict_of(response: requests.Response) -> tuple[int | str, str]:
    """(status, error code) of an error answer, or ("accepted", "ok") for 202 (new) and 200 (known)."""
    return (response.status_code, response.json()["error"]["code"]) if response.status_code >= 400 else ("accepted", "ok")


def upload_mutants(pipeline, kafka, count: int) -> None:
    made = list(mutants(count, SEED))
    start = end_offsets(kafka, "images.uploaded")

    def post(mutant: Mutant) -> requests.Response:
        files = {"file": (f"m{mutant.index}.bin", mutant.data, "application/octet-stream")}
        return requests.post(f"{pipeline.ingest_url}/v1/images", files=files, headers=pipeline.headers, timeout=120)

    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(post, made))
    counts = Counter(r.status_code if r.status_code < 400 else f"{r.status_code} {r.json()['error']['code']}" for r in responses)
    print(f"\n{count} mutated uploads: {dict(sorted(counts.items(), key=str))}")

    server_errors = [f"{m}: {r.status_code} {r.text[:200]}" for m, r in zip(made, responses) if r.status_code >= 500]
    assert not server_errors, server_errors[:5]
    settings = IngestSettings()
    differ = [f"{m}: {verdict_of(r)} in process {verdict_in_process(m.data, settings)}" for m, r in zip(made, responses)
              if verdict_of(r) != verdict_in_process(m.data, settings)]  # fmt: skip
    assert not differ, differ[:5]

    rejected = {image_id_of(m.data) for m, r in zip(made, responses) if r.status_code >= 400}
    # Mutants are the same every session, so the accepted ones may be known already (200): a
    # fresh image uploaded in the same window shows the event check does see new uploads.
    control = post(Mutant(-1, "session control", "none", salted(Image.new("RGB", (32, 32), tuple(os.urandom(3))), "PNG", tag=TAG)))
    assert control.status_code == 202, control.text
    started = {control.json()["id"]} | {r.json()["id"] for r in responses if r.status_code == 202}
    assert rejected, "the sample should hold refused images"
    records = ImageRecords(ObjectStore(pipeline.s3))
    with ThreadPoolExecutor(8) as pool:
        traces = dict(zip(rejected, pool.map(lambda i: (records.store.head(original_key(i)), records.all(i)), rejected)))
    assert {image_id: trace for image_id, trace in traces.items() if trace != (None, {})} == {}
    produced = {key for key, _ in read_since(kafka, "images.uploaded", start)}
    assert not produced & rejected, "a refused upload produced images.uploaded"
    assert started <= produced  # each new image has its event


def test_mutated_uploads_get_4xx_and_leave_no_trace(pipeline, kafka) -> None:
    upload_mutants(pipeline, kafka, UPLOADS_SHORT)


@pytest.mark.hostile
def test_every_mutated_upload_gets_4xx_and_leaves_no_trace(pipeline, kafka) -> None:
    upload_mutants(pipeline, kafka, UPLOADS_FULL)
