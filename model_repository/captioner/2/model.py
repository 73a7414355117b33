"""Triton python-backend model ``captioner``: the public captioning model, composed by BLS.

Each image is decoded once (every supported format, EXIF orientation applied), then
routed: images of the generated scene world go to ``scene_captioner``; every other image
goes to ``classifier``, ``detector`` and ``text_reader``, and its captions are built from
what they found (``perception.composition``, ``perception.grounded``). A request carries
each image once with every language wanted (``LANGUAGE`` ``[B, n]``, ragged across the
batch); an image sent in several requests of one batch is still understood once.

A request with bad input (undecodable, too large, unknown language) fails alone with
INVALID_ARG; a sub-model failure fails the batch with INTERNAL, which clients retry.
"""

import hashlib
import json

import numpy as np
import triton_python_backend_utils as pb_utils

from captioner.vocabulary import LANGUAGES
from captioning_common.images import open_upright
from perception.composition import SCENE_WORLD, Composer, ModelNames, findings_json
from perception.grounded import describe, keywords
from perception.routing import SceneWorldRouter
from perception.serving import error_response, model_parameters

OUTPUTS = ("CAPTION", "KEYWORDS", "SCORE", "TAGS", "OBJECTS", "TEXT", "ROUTE")


class SubModelError(RuntimeError):
    """A model the composition calls failed; the whole batch is retried by its clients."""


def _strings(rows: list[list[str]]) -> np.ndarray:
    return np.array([[value.encode() for value in row] for row in rows], dtype=np.object_)


def run_bls(model: str, inputs: dict[str, np.ndarray], outputs: list[str]) -> dict[str, np.ndarray]:
    """One synchronous BLS call; SubModelError when the model answers with an error."""
    request = pb_utils.InferenceRequest(
        model_name=model,
        requested_output_names=outputs,
        inputs=[pb_utils.Tensor(name, array) for name, array in inputs.items()],
    )
    response = request.exec()
    if response.has_error():
        raise SubModelError(f"{model}: {response.error().message()}")
    return {name: pb_utils.get_output_tensor_by_name(response, name).as_numpy() for name in outputs}


class TritonPythonModel:
    def initialize(self, args):
        params, version_dir = model_parameters(args)
        router_file = version_dir / params.get("scene_world_router", "scene_world.npz")
        if not router_file.exists():
            raise pb_utils.TritonModelException(f"no scene-world router at {router_file}: run `make model-repository`")
        self.names = ModelNames(
            scene_captioner=params.get("scene_captioner", "scene_captioner"),
            classifier=params.get("classifier", "classifier"),
            detector=params.get("detector", "detector"),
            text_reader=params.get("text_reader", "text_reader"),
        )
        self.composer = Composer(run_bls, SceneWorldRouter.load(router_file), self.names, read_text=params.get("read_text", "1") == "1")
        self.max_bytes = int(params.get("max_image_bytes", str(20 * 1024 * 1024)))
        self.max_pixels = int(params.get("max_image_pixels", str(40_000_000)))

    def _rows(self, request) -> list[tuple[bytes, list[str]]]:
        """(image bytes, languages) of each row of the request; ValueError naming what is wrong."""
        images = pb_utils.get_input_tensor_by_name(request, "IMAGE").as_numpy().reshape(-1)
        languages = pb_utils.get_input_tensor_by_name(request, "LANGUAGE").as_numpy()
        if languages.ndim != 2 or languages.shape[0] != len(images) or languages.shape[1] == 0:
            raise ValueError(f"LANGUAGE must be [B, n] with n >= 1 languages for each of the B images, got {list(languages.shape)}")
        rows = []
        for data, wanted in zip(images, languages):
            wanted = [language.decode() if isinstance(language, bytes) else str(language) for language in wanted]
            for language in wanted:
                if language not in LANGUAGES:
                    raise ValueError(f"unsupported language {language!r}: use one of {', '.join(LANGUAGES)}")
            if len(set(wanted)) != len(wanted):
                raise ValueError(f"LANGUAGE names a language twice: {wanted}")
            data = bytes(data)
            if not data:
                raise ValueError("empty image")
            if len(data) > self.max_bytes:
                raise ValueError(f"image of {len(data)} bytes exceeds the limit of {self.max_bytes}")
            rows.append((data, wanted))
        return rows

    def execute(self, requests):
        responses = [None] * len(requests)
        accepted = []  # (request index, [(image key, languages)])
        images, order = {}, []
        for index, request in enumerate(requests):
            try:
                keys = []
                for data, languages in self._rows(request):
                    key = hashlib.sha256(data).digest()
                    if key not in images:
                        images[key] = (data, open_upright(data, self.max_pixels))
                        order.append(key)
                    keys.append((key, languages))
                accepted.append((index, keys))
            except ValueError as exc:
                responses[index] = error_response(str(exc), pb_utils.TritonError.INVALID_ARG)
        if not accepted:
            return responses
        try:
            understood = dict(zip(order, self.composer.understand([images[key][1] for key in order])))
            scene_rows = [
                (images[key][0], language)
                for _, keys in accepted
                for key, languages in keys
                if understood[key].route == SCENE_WORLD
                for language in languages
            ]
            scene_captions = iter(self.composer.scene_captions(scene_rows))
        except SubModelError as exc:
            for index, _ in accepted:
                responses[index] = error_response(str(exc), pb_utils.TritonError.INTERNAL)
            return responses
        findings = {key: findings_json(understanding.findings) for key, understanding in understood.items()}
        for index, keys in accepted:
            values = {name: [] for name in OUTPUTS}
            for key, languages in keys:
                understanding = understood[key]
                captions, words, scores = [], [], []
                for language in languages:
                    if understanding.route == SCENE_WORLD:
                        caption, found_words, score = next(scene_captions)
                    else:
                        grounded = describe(understanding.findings, language)
                        caption, found_words, score = grounded.text, keywords(understanding.findings, language), grounded.score
                    captions.append(caption)
                    words.append(json.dumps(found_words, ensure_ascii=False))
                    scores.append(score)
                values["CAPTION"].append(captions)
                values["KEYWORDS"].append(words)
                values["SCORE"].append(scores)
                for name, text in findings[key].items():
                    values[name].append([text])
                values["ROUTE"].append([understanding.route])
            tensors = [pb_utils.Tensor(name, _strings(values[name])) for name in OUTPUTS if name != "SCORE"]
            tensors.append(pb_utils.Tensor("SCORE", np.array(values["SCORE"], dtype=np.float32)))
            responses[index] = pb_utils.InferenceResponse(output_tensors=tensors)
        return responses
