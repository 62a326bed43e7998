"""The Predict tab: record or upload a clip, see the emotions, add it to a pool."""

from __future__ import annotations

from typing import Any

import gradio as gr

from serdemo.app.config import ServiceError
from serdemo.app.service import Service
from serdemo.app.ui.figures import prediction_markdown, timeline_figure
from serdemo.app.ui.widgets import language_dropdown, session_of, user_errors
from serdemo.labels import EMOTIONS


def add_predict_tab(service: Service, languages: list[gr.Dropdown]) -> None:
    """Lay out the Predict tab and wire its events."""
    with gr.Row():
        with gr.Column(scale=1):
            audio = gr.Audio(
                sources=["upload", "microphone"],
                type="filepath",
                label="Speech clip",
                elem_id="predict-audio",
            )
            predict_button = gr.Button(
                "Predict", variant="primary", interactive=False, elem_id="predict-button"
            )
            examples = service.example_files()
            with gr.Row():
                language = language_dropdown(
                    service,
                    languages,
                    "Language of this clip",
                    "normalises features like this language's clips; "
                    "choose it to add the clip to that language's pool",
                    elem_id="predict-language",
                    preset=False,  # a clip joins a pool only in a language someone chose for it
                )
                add_button = gr.Button("Add to target pool", interactive=False, elem_id="add-to-pool")
            pool_message = gr.Markdown(elem_id="pool-message")
        with gr.Column(scale=1):
            summary = gr.Markdown("Upload or record a clip, or click an example.", elem_id="predict-summary")
            probs = gr.Label(
                num_top_classes=len(EMOTIONS), label="Emotion probabilities", elem_id="predict-label"
            )
            timeline = gr.Plot(label="Timeline", visible=False, elem_id="predict-timeline")
            with gr.Accordion("Result as JSON", open=False):
                details = gr.JSON(label="prediction")

    @user_errors
    def predict(path: str | None, lang: str | None = None) -> tuple[Any, ...]:
        if not path:
            raise ServiceError("no audio yet: upload or record a clip first")
        prediction = service.predict(path, lang)
        plot = (
            gr.Plot(timeline_figure(prediction), visible=True)
            if prediction.segments
            else gr.Plot(visible=False)
        )
        return prediction.probs, prediction_markdown(prediction), plot, prediction.to_dict()

    outputs = [probs, summary, timeline, details]
    # Predict fires when an upload or a recording has *finished*, and the button only becomes clickable
    # once the audio component holds a complete file, so a half-uploaded file is never submitted.
    # Each starts by clearing the last answer: a refused file or a cleared clip must not leave it shown.
    inputs = [audio, language]

    def clear() -> tuple[Any, ...]:
        return None, "Upload or record a clip, or click an example.", gr.Plot(visible=False), None

    quick = {"api_visibility": "private", "queue": False, "show_progress": "hidden"}
    predict_button.click(clear, None, outputs, **quick).then(
        predict, inputs, outputs, api_name="predict", concurrency_limit=2
    )
    for finished in (audio.upload, audio.stop_recording):
        finished(clear, None, outputs, **quick).then(
            predict, inputs, outputs, api_visibility="private", concurrency_limit=2
        )
    audio.clear(clear, None, outputs, **quick)

    def ready(path: str | None) -> tuple[Any, Any]:
        enabled = bool(path)
        return gr.Button(interactive=enabled), gr.Button(interactive=enabled)

    audio.change(ready, audio, [predict_button, add_button], api_visibility="private", queue=False)
    if examples:
        # an example fills only the audio: its language is read from its name, and never left in the
        # picker, where it would silently become the language of the next upload added to a pool
        @user_errors
        def predict_example(path: str | None) -> tuple[Any, ...]:
            return predict(path, service.example_language(path) if path else None)

        gr.Examples(
            examples=[[path] for path in examples],
            inputs=[audio],
            outputs=outputs,
            fn=predict_example,
            run_on_click=True,
            cache_examples=False,
            label="Examples (synthetic speech, CC0)",
            example_labels=[service.example_label(path) for path in examples],
        )

    @user_errors
    def add_to_pool(path: str | None, lang: str, request: gr.Request) -> str:
        service.require_login(session_of(request), "add clips to a pool")
        if not path:
            raise ServiceError("no audio yet: upload or record a clip first")
        return service.add_to_pool(path, lang)

    add_button.click(add_to_pool, [audio, language], pool_message, api_name="add_to_pool")
