"""The Label tab: the labeling queue, its shortcuts, bulk add and undo."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import gradio as gr

from serdemo.app.config import RANKING_RULES, ServiceError
from serdemo.app.service import Service
from serdemo.app.ui.figures import counts_figure, progress_markdown, spectrogram_figure, suggestion_markdown
from serdemo.app.ui.widgets import language_dropdown, session_of, user_errors
from serdemo.app.views import LabelState
from serdemo.labels import EMOTIONS


def add_label_tab(service: Service, tab: gr.Tab, languages: list[gr.Dropdown]) -> None:
    """Lay out the Label tab and wire its events."""
    state = gr.State(LabelState())
    with gr.Row():
        language = language_dropdown(service, languages, elem_id="label-language")
        rule = gr.Radio(
            [(rule.replace("_", " "), rule) for rule in RANKING_RULES],
            value=RANKING_RULES[0],
            label="Which clip next (coverage: the least-labeled region first, its most uncertain clip)",
        )
        with gr.Column():
            annotator = gr.Textbox(
                label="Your name (for the label log)", placeholder="anonymous", max_lines=1
            )
            hide_names = gr.Checkbox(
                False, label="Hide file names (they can give the label away)", elem_id="label-hide-names"
            )
    with gr.Row():
        with gr.Column(scale=3):
            clip_audio = gr.Audio(
                label="Clip to label", interactive=False, type="filepath", elem_id="label-audio"
            )
            spectrogram = gr.Plot(label="Spectrogram", show_label=False)
        with gr.Column(scale=2):
            suggestion = gr.Markdown(elem_id="label-suggestion")
            with gr.Row(elem_classes="label-buttons"):
                emotion_buttons = [
                    gr.Button(
                        f"{i + 1} · {emotion}", elem_id=f"label-{emotion}", variant="primary", size="sm"
                    )
                    for i, emotion in enumerate(EMOTIONS)
                ]
            with gr.Row():
                skip_button = gr.Button("Skip (s)", elem_id="label-skip", size="sm")
                undo_button = gr.Button("Undo (u)", elem_id="label-undo", size="sm")
            progress = gr.Markdown(elem_id="label-progress")
            progress_plot = gr.Plot(show_label=False)
    with gr.Accordion("Bulk add clips to the target pool", open=False):
        with gr.Row():
            files = gr.File(
                file_count="multiple",
                file_types=["audio", ".zip"],
                label="Audio files or a .zip of them",
                elem_id="bulk-files",
            )
            with gr.Column():
                bulk_language = language_dropdown(
                    service, languages, "Language of these clips", elem_id="bulk-language"
                )
                bulk_button = gr.Button("Add to pool", elem_id="bulk-add")
                bulk_message = gr.Markdown(elem_id="bulk-message")

    outputs = [state, clip_audio, spectrogram, suggestion, progress, progress_plot]

    def show(view: Any) -> tuple[Any, ...]:
        item = view.item
        return (
            view.state,
            item.path if item else None,
            spectrogram_figure(item) if item else None,
            suggestion_markdown(item, view.state),
            progress_markdown(view.counts, view.unlabeled)
            + (f"\n\n↩️ {view.message}" if view.message else ""),
            counts_figure(
                view.counts,
                f"Labels so far ({view.state.language})" if view.state.language else "Labels so far",
            ),
        )

    @user_errors
    def refresh(lang: str, how: str, current: LabelState, request: gr.Request) -> tuple[Any, ...]:
        service.require_login(session_of(request), "label")  # the pool's audio is the annotators' data
        return show(service.label_view(current.with_settings(lang, how)))

    @user_errors
    def skip(lang: str, how: str, current: LabelState, request: gr.Request) -> tuple[Any, ...]:
        service.require_login(session_of(request), "label")
        return show(service.skip(current.with_settings(lang, how)))

    @user_errors
    def undo(lang: str, how: str, who: str, current: LabelState, request: gr.Request) -> tuple[Any, ...]:
        return show(service.undo(current.with_settings(lang, how), annotator_of(service, who, request)))

    def labeler(emotion: str) -> Callable[..., tuple[Any, ...]]:
        @user_errors
        def label_on_screen(
            lang: str, how: str, who: str, current: LabelState, request: gr.Request
        ) -> tuple[Any, ...]:
            return show(
                service.label_current(
                    current.with_settings(lang, how), emotion, annotator_of(service, who, request)
                )
            )

        return label_on_screen

    settings = [language, rule, state]
    private = {"api_visibility": "private", "show_progress": "minimal"}

    def hide(flag: bool, current: LabelState) -> LabelState:
        return dataclasses.replace(current, hide_names=bool(flag))

    hide_names.change(hide, [hide_names, state], state, **private).then(refresh, settings, outputs, **private)
    tab.select(refresh, settings, outputs, **private)
    # .change, not .input: the store refresh fills a blank picker, and the queue must follow it
    language.change(refresh, settings, outputs, **private)
    rule.input(refresh, settings, outputs, **private)
    skip_button.click(skip, settings, outputs, **private)
    undo_button.click(undo, [language, rule, annotator, state], outputs, **private)
    for emotion, button in zip(EMOTIONS, emotion_buttons, strict=True):
        # trigger_mode="once": a double key press must not label two clips with one emotion
        button.click(
            labeler(emotion), [language, rule, annotator, state], outputs, trigger_mode="once", **private
        )

    @user_errors
    def bulk_add(
        paths: list[str] | None,
        lang: str,
        request: gr.Request,
        progress=gr.Progress(),  # noqa: B008  (Gradio's way to ask for a progress bar)
    ) -> str:
        service.require_login(session_of(request), "add clips to a pool")
        return service.add_files(paths or [], lang, progress=lambda frac, text: progress(frac, desc=text))

    def follow(lang: str | None, current: str | None) -> Any:
        # the clips just added are what this person wants to label next
        added = (lang or "").strip().lower()
        return gr.Dropdown(value=added or current)

    bulk_button.click(bulk_add, [files, bulk_language], bulk_message, api_name="bulk_add").success(
        follow, [bulk_language, language], language, **private
    ).then(refresh, settings, outputs, **private)

    # The same action for scripts, any clip by id: client.predict(12, "anger", "ada", api_name="/label")
    @user_errors
    def label(
        clip_id: int, emotion: str, annotator: str = "api", request: gr.Request = None
    ) -> dict[str, Any]:
        """Save a human label for clip ``clip_id``; returns the clip's language and the labels per class.

        With accounts (SERDEMO_AUTH) the label is saved under the logged-in user, whatever ``annotator`` says.
        """
        if not isinstance(clip_id, (int, float, str)) or not str(clip_id).strip().lstrip("-").isdigit():
            raise ServiceError(f"clip id must be a whole number, got {str(clip_id)[:40]!r}")
        return service.label(
            int(str(clip_id).strip()), emotion, annotator_of(service, annotator or "api", request)
        )

    gr.api(label, api_name="label")


def annotator_of(service: Service, name: str, request: gr.Request | None) -> str:
    """The name labels are saved under: the login with accounts; else what the user typed, else the session.

    With accounts nobody can label (or undo) under another person's name by typing it.
    """
    user = service.require_login(session_of(request), "label")
    if user is not None:
        return user
    if name and name.strip():
        return name.strip()
    if request is not None and getattr(request, "username", None):
        return str(request.username)
    session = getattr(request, "session_hash", None) or "anonymous"
    return f"web-{session[:8]}"
