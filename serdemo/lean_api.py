"""``/predict_probs``: the HTTP API's lean prediction, emotion probabilities of one clip and nothing else.

``/predict`` answers the page: its input is the page's audio component, whose preprocessing decodes
the upload and writes it again as WAV, and its outputs are a label, a summary, a timeline figure and
the JSON details, each postprocessed per call. A script wants the numbers. This endpoint takes the
upload as a plain file (Gradio hands over its path untouched) and returns ``{emotion: probability}``
as JSON, so it costs the model plus Gradio's round trip (bench/http_predict.py measures both).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr

from serdemo.service import Service


def add_probability_endpoint(service: Service, user_errors: Callable[[Callable], Callable]) -> None:
    """Add ``/predict_probs`` (file, language) -> {emotion: probability} to the Blocks being built.

    Args:
        service: the app's service.
        user_errors: the app's wrapper that turns user-caused errors into messages.

    """

    @user_errors
    def predict_probs(path: str | None, language: str | None = None) -> dict[str, Any]:
        if not path:
            raise ValueError("no audio: pass the clip as handle_file(PATH)")
        return service.predict(path, language or None).probs

    # hidden: the components exist only to declare the endpoint's inputs and output
    with gr.Row(visible=False):
        clip = gr.File(type="filepath", label="clip", visible=False)
        language = gr.Textbox(label="language", visible=False)
        probs = gr.JSON(label="probabilities", visible=False)
        trigger = gr.Button(visible=False)
    trigger.click(
        predict_probs,
        [clip, language],
        probs,
        api_name="predict_probs",
        concurrency_limit=2,
        show_progress="hidden",
    )
