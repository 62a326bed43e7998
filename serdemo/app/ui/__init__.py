"""The Gradio app: lays out the tabs and wires each user action to one call of the service.

One module per tab (``predict_tab`` ... ``export_tab``), with ``widgets`` (pickers, login, error
messages), ``figures`` (plots and text) and ``page`` (CSS, scripts, launch options) beside them.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from serdemo.app.service import Service
from serdemo.app.ui.adapt_tab import add_adapt_tab
from serdemo.app.ui.explore_tab import add_explore_tab
from serdemo.app.ui.export_tab import add_export_tab
from serdemo.app.ui.label_tab import add_label_tab
from serdemo.app.ui.page import TITLE, launch_options
from serdemo.app.ui.predict_tab import add_predict_tab
from serdemo.app.ui.widgets import VersionPicker, login_box

__all__ = ["build_app", "launch_options"]


def build_app(service: Service) -> gr.Blocks:
    """Lay out the app and wire its events; every callback is one service call.

    Launch with ``build_app(service).launch(**launch_options())`` (shortcuts, CSS and theme).
    """
    # delete_cache: Gradio's copies of uploads and served files go after an hour, checked every 15 min
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(900, 3600)) as app:
        gr.Markdown(
            f"# {TITLE}\nAgarla et al. (2023): adapt an emotion classifier to a new language from a "
            "few labeled clips and many unlabeled ones."
        )
        login_box(service)
        status = gr.Markdown(service.status(), elem_id="status")
        timer = gr.Timer(2.0)
        timer.tick(
            service.status, None, status, show_progress="hidden", api_visibility="private", queue=False
        )

        languages: list[gr.Dropdown] = []  # every language picker: its choices are the store's languages
        versions: list[VersionPicker] = []  # every version picker: its choices are the store's versions
        with gr.Tabs():
            with gr.Tab("Predict", id="predict"):
                add_predict_tab(service, languages)
            with gr.Tab("Label", id="label") as label_tab:
                add_label_tab(service, label_tab, languages)
            with gr.Tab("Adapt", id="adapt") as adapt_tab:
                table = add_adapt_tab(service, adapt_tab, languages, versions)
            with gr.Tab("Explore", id="explore"):
                add_explore_tab(service, languages, versions)
            with gr.Tab("Export", id="export"):
                add_export_tab(service)

        # Pickers whose choices come from the store follow it in every open tab: each tick compares the
        # store's fingerprint with the one this page last saw and reloads the pickers only when it moved
        # (a pool or a version made in another tab, by the API, or by start-up after the page was built).
        seen = gr.State("")
        pickers = [*languages, *(v.dropdown for v in versions)]

        def sync_pickers(last: str, *values: Any) -> list[Any]:
            signature = service.choices_signature()
            if signature == last:
                return [gr.skip()] * (2 + len(pickers))
            choices, default, ids = service.languages(), service.default_language(), service.version_ids()
            updates: list[Any] = [signature, service.versions()]
            updates += [
                gr.Dropdown(choices=choices, value=v or (default if d.serdemo_preset else None))
                for d, v in zip(languages, values[: len(languages)], strict=True)
            ]
            for picker, value in zip(versions, values[len(languages) :], strict=True):
                updates.append(gr.Dropdown(choices=ids, value=value if value in ids else picker.default()))
            return updates

        sync = {"fn": sync_pickers, "inputs": [seen, *pickers], "outputs": [seen, table, *pickers]}
        hidden = {"api_visibility": "private", "show_progress": "hidden"}
        app.load(**sync, **hidden)
        timer.tick(**sync, **hidden, queue=False)
        return app
