"""The Explore tab: projections under two versions, click a point to hear it."""

from __future__ import annotations

from typing import Any

import gradio as gr

from serdemo.app.config import COLOR_CHOICES
from serdemo.app.service import Service
from serdemo.app.ui.widgets import VersionPicker, language_dropdown, session_of, store_dropdown, user_errors


def add_explore_tab(service: Service, languages: list[gr.Dropdown], pickers: list[VersionPicker]) -> None:
    """Lay out the Explore tab and wire its events."""
    with gr.Row():
        language = language_dropdown(service, languages)
        method = gr.Radio(["pca", "umap"], value="pca", label="Projection")
        dims = gr.Radio([2, 3], value=2, label="Dimensions")
        color_by = gr.Radio(list(COLOR_CHOICES), value="emotion", label="Colour by")
    with gr.Row():
        baseline = store_dropdown(
            service.version_ids(),
            value=service.baseline_version_id(),
            label="Baseline (left)",
            info="default: the first source-only model",
            elem_id="explore-baseline",
        )
        compared = store_dropdown(
            service.version_ids(),
            value=None,
            label="Compared with (right)",
            info="empty: the active model",
            elem_id="explore-compared",
        )
        draw = gr.Button("Draw", variant="primary", elem_id="explore-draw")
    pickers += [VersionPicker(baseline, service.baseline_version_id), VersionPicker(compared, lambda: None)]
    message = gr.Markdown(elem_id="explore-message")
    with gr.Row():
        before = gr.Plot(label="Baseline", elem_id="explore-before")
        after = gr.Plot(label="Compared", elem_id="explore-after")
    with gr.Row():
        clip = gr.Dropdown([], label="Play a clip (click a point, or pick its id)", elem_id="explore-clip")
        clip_audio = gr.Audio(
            label="Selected clip", interactive=False, type="filepath", elem_id="explore-audio"
        )
    # the page script (CLICK_TO_PLAY_JS) keeps the clicked point's key and presses this hidden button,
    # whose js hands that key to the server as the textbox's value
    clicked = gr.Textbox(visible="hidden", elem_id="explore-clicked")
    play_clicked = gr.Button(visible="hidden", elem_id="explore-play-clicked")

    @user_errors
    def project(
        lang: str, how: str, d: int, color: str, base: str | None = None, other: str | None = None
    ) -> tuple[Any, ...]:
        view = service.project(lang, method=how, dims=int(d), color_by=color, before=base, after=other)
        return view.message, view.before, view.after, gr.Dropdown(choices=view.clip_choices, value=None)

    draw.click(
        project,
        [language, method, dims, color_by, baseline, compared],
        [message, before, after, clip],
        api_name="project",
    )

    @user_errors
    def play(key: str | None, request: gr.Request) -> str | None:
        service.require_login(session_of(request), "play pool clips")
        return service.clip_path(key) if key else None

    clip.change(play, clip, clip_audio, api_visibility="private")
    play_clicked.click(
        play,
        clicked,
        clip_audio,
        js="() => window.serdemoClickedPoint || null",
        api_visibility="private",
    )
