"""Real Triton: a test model with dynamic batching, 64 concurrent requests, Triton's own metrics."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from tritonclient.grpc import InferInput, InferRequestedOutput

from captioning_common.settings import TritonSettings
from captioning_common.triton import triton_client, wait_until_ready
from tests.conftest import REPO_ROOT, start_triton
from tests.integration.triton_metrics import counters, counters_after

MODEL = "batching_probe"


@pytest.fixture(scope="module")
def probe_triton(servers) -> TritonSettings:
    """A Triton of the test's own, serving tests/triton_models on free ports."""
    settings, component = start_triton(servers, REPO_ROOT / "tests" / "triton_models", "triton-test")
    wait_until_ready(triton_client(settings, "http"), MODEL)
    yield settings
    component.stop()


async def infer_concurrently(settings: TritonSettings, payloads: list[bytes]) -> list[tuple[int, int]]:
    client = triton_client(settings, "grpc-aio")
    try:

        async def one(payload: bytes) -> tuple[int, int]:
            data = InferInput("DATA", [1, 1], "BYTES")
            data.set_data_from_numpy(np.array([[payload]], dtype=np.object_))
            result = await client.infer(
                MODEL, [data], outputs=[InferRequestedOutput("LENGTH"), InferRequestedOutput("EXECUTION_SIZE")]
            )
            return int(result.as_numpy("LENGTH")[0, 0]), int(result.as_numpy("EXECUTION_SIZE")[0, 0])

        return await asyncio.gather(*(one(p) for p in payloads))
    finally:
        await client.close()


def test_64_concurrent_requests_are_batched(probe_triton: TritonSettings) -> None:
    requests_before, executions_before = counters(probe_triton, MODEL)

    payloads = [bytes([i % 256]) * (i + 1) for i in range(64)]
    results = asyncio.run(infer_concurrently(probe_triton, payloads))

    assert [length for length, _ in results] == [len(p) for p in payloads]
    requests_after, executions_after = counters_after(probe_triton, MODEL, requests_before + 64)
    requests = requests_after - requests_before
    executions = executions_after - executions_before
    assert requests == 64
    # Triton's own counters: fewer executions than requests means executions held several requests.
    assert executions < requests, f"{executions} executions for {requests} requests: no batching"
    assert max(size for _, size in results) > 1
    print(f"64 requests ran in {executions:.0f} executions; largest execution held {max(s for _, s in results)}")


def test_grpc_and_http_clients_reach_the_same_server(probe_triton: TritonSettings) -> None:
    grpc_client = triton_client(probe_triton, "grpc")
    http_client = triton_client(probe_triton, "http")
    assert grpc_client.is_model_ready(MODEL)
    assert http_client.is_model_ready(MODEL)
    assert grpc_client.get_server_metadata().version == http_client.get_server_metadata()["version"]


def test_unknown_protocol_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown Triton protocol"):
        triton_client(TritonSettings(), "carrier-pigeon")  # type: ignore[arg-type]
