"""``POST /api/predict_probs``: one plain HTTP request in, emotion probabilities out.

Every Gradio endpoint called through ``gradio_client`` costs an upload request, a queue join and an
event stream before and after the function runs: ~110 ms on the 2-core VM with a tiny model, whether
the endpoint returns the page's four outputs (``/predict``) or a dict (bench/http_predict.py), while
the model itself takes ~60 ms. Scripts that want the numbers post the audio bytes here instead and get
JSON back in one round trip; the Gradio endpoints are unchanged.

Example::

    curl --data-binary @clip.wav "http://127.0.0.1:7860/api/predict_probs?language=de"
    # {"anger": 0.61, "fear": 0.05, "happiness": 0.12, "neutral": 0.17, "sadness": 0.05}
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from serdemo.app.config import ServiceError
from serdemo.app.config import scrub as scrub_paths
from serdemo.app.service import Service
from serdemo.audio import AudioError

PATH = "/api/predict_probs"


def add_probability_route(server: FastAPI, service: Service, max_bytes: int) -> None:
    """Serve ``POST PATH?language=xx`` (body: the audio file's bytes) on the app's FastAPI server.

    Answers 200 with ``{emotion: probability}``, 400 for unusable audio, 413 for a body over
    ``max_bytes``, 503 while the service has no model yet; error bodies are ``{"error": message}``.

    Args:
        server: the running Gradio app's FastAPI server (``blocks.server_app``).
        service: the app's service.
        max_bytes: the largest body accepted (the app's upload limit).

    """

    @server.post(PATH)
    async def predict_probs(request: Request, language: str = "") -> JSONResponse:
        body = await request.body()
        if not body:
            return _error(400, "empty body: post the audio file's bytes (curl --data-binary @clip.wav)")
        if len(body) > max_bytes:
            return _error(413, f"the clip is {len(body) >> 20} MB; the limit is {max_bytes >> 20} MB")
        try:
            probs = await run_in_threadpool(_predict, service, body, language.strip() or None)
        except AudioError as error:
            return _error(400, scrub_paths(str(error)))
        except ServiceError as error:
            return _error(503, scrub_paths(str(error)))
        return JSONResponse(probs)


def _predict(service: Service, audio: bytes, language: str | None) -> dict[str, float]:
    # the service reads files (any format soundfile knows by content); the copy lives only for the call
    handle, name = tempfile.mkstemp(prefix="serdemo-probs-", suffix=".audio")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(audio)
        return service.predict(Path(name), language).probs
    finally:
        os.unlink(name)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)
