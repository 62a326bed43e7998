"""The Adapt tab: settings of a round, its progress and report, the versions table."""

from __future__ import annotations

from typing import Any

import gradio as gr

from serdemo.app.config import BusyError, RoundCancelledError
from serdemo.app.service import Service
from serdemo.app.ui.figures import confusion_figure, counts_figure
from serdemo.app.ui.widgets import VersionPicker, language_dropdown, session_of, store_dropdown, user_errors
from serdemo.app.views import AdaptRequest
from serdemo.config import AdaptConfig, Balance, Policy


def add_adapt_tab(
    service: Service, tab: gr.Tab, languages: list[gr.Dropdown], pickers: list[VersionPicker]
) -> gr.Dataframe:
    """Lay out the Adapt tab and wire its events; returns the versions table (it follows the store)."""
    with gr.Row():
        with gr.Column(scale=1):
            language = language_dropdown(service, languages, elem_id="adapt-language")
            outlook = gr.Markdown(elem_id="adapt-pool")  # filled when the tab opens or the language changes
            policy = gr.Radio(
                [p.value for p in Policy], value=AdaptConfig.policy, label="Pseudo-label policy"
            )
            tau = gr.Slider(
                0.0,
                1.0,
                value=AdaptConfig.tau,
                step=0.05,
                label="tau (hard: keep pseudo-labels with p >= tau)",
            )
            epochs = gr.Number(value=service.default_epochs(), precision=0, minimum=1, label="Epochs E")
            window = gr.Number(
                value=service.default_window(), precision=0, minimum=1, label="Re-label every W epochs"
            )
            rebalance = gr.Checkbox(value=AdaptConfig.rebalance, label="Rebalance target vs source clips")
            balance = gr.Radio(
                [b.value for b in Balance],
                value=AdaptConfig.pseudo_balance,
                label="Balance pseudo-labels to a uniform class prior (auto: only while no clip is labeled; "
                "auto-language: per language until 10 labels per class, needs no speaker id)",
            )
            # shown either way: where it is off, its text says why (serdemo.app.tuned.offer)
            offer = service.finetune_offer()
            finetune = gr.Checkbox(
                value=False,
                interactive=offer.offered,
                label="Fine-tune the encoder",
                info=offer.reason,
                elem_id="adapt-finetune",
            )
            with gr.Row():
                start = gr.Button("Start adaptation round", variant="primary", elem_id="adapt-start")
                cancel = gr.Button("Cancel round", variant="stop", elem_id="adapt-cancel")
            cancel_message = gr.Markdown(elem_id="adapt-cancel-message")
        with gr.Column(scale=2):
            result = gr.Markdown("No round run in this session yet.", elem_id="adapt-result")
            with gr.Row():
                source_confusion = gr.Plot(show_label=False, visible=False)
                target_confusion = gr.Plot(show_label=False, visible=False)
            pseudo = gr.Plot(show_label=False, visible=False)
    gr.Markdown("### Model versions")
    versions = gr.Dataframe(service.versions(), interactive=False, elem_id="versions", wrap=True)
    with gr.Row():
        version = store_dropdown(service.version_ids(), value=None, label="Version", elem_id="version-choice")
        pickers.append(VersionPicker(version, lambda: None))
        activate = gr.Button("Activate (roll back / forward)", elem_id="version-activate")
        activate_message = gr.Markdown(elem_id="activate-message")

    @user_errors
    def adapt(
        lang: str,
        how: str,
        t: float,
        e: float,
        w: float,
        rb: bool,
        bal: str,
        tune: bool,
        request: gr.Request,
        progress=gr.Progress(),  # noqa: B008  (Gradio's way to ask for a progress bar)
    ) -> tuple[Any, ...]:
        service.require_login(session_of(request), "run an adaptation round")
        request = AdaptRequest(
            language=lang,
            policy=how,
            tau=t,
            epochs=int(e),
            window=int(w),
            rebalance=rb,
            pseudo_balance=bal,
            finetune=bool(tune),
        )
        try:
            report = service.adapt(request, progress=lambda frac, text: progress(frac, desc=text))
        except BusyError as busy:  # another tab's round: a message here, the other outputs stay as they are
            return busy_outputs(busy, 6)
        except RoundCancelledError as cancelled:  # the previous version stays: say so, change nothing else
            return (f"⏹ {cancelled}", *[gr.skip()] * 5)
        figures = [
            gr.Plot(
                confusion_figure(m["confusion"], m["classes"], f"{name}: UA {m['ua']:.1%} on {m['n']} clips"),
                visible=True,
            )
            if m
            else gr.Plot(visible=False)
            for name, m in (
                ("held-out source", report.source_metrics),
                ("held-out target", report.target_metrics),
            )
        ]
        return (
            report.markdown(),
            *figures,
            gr.Plot(
                counts_figure(report.pseudo_per_class, "Pseudo-labels accepted in the last round"),
                visible=True,
            ),
            service.versions(),
            gr.Dropdown(choices=service.version_ids(), value=report.version_id),
        )

    start.click(
        adapt,
        [language, policy, tau, epochs, window, rebalance, balance, finetune],
        [result, source_confusion, target_confusion, pseudo, versions, version],
        api_name="adapt",
        # 2, not 1: a second click must reach the service and hear "a round is running" at once,
        # instead of silently queueing a second round behind the first
        concurrency_limit=2,
    )
    # the pool's size and whether a round would learn from it, before Start is pressed (a small pool is not)
    language.change(service.pool_outlook, language, outlook, show_progress="hidden")

    @user_errors
    def cancel_round(request: gr.Request) -> str:
        service.require_login(session_of(request), "cancel an adaptation round")
        return service.cancel_round()

    # its own event, so it runs while the round's event is busy; the round stops at its next mini-batch
    cancel.click(cancel_round, None, cancel_message, api_name="cancel_round")

    def finetune_option() -> gr.Checkbox:
        """The option as this machine allows it now: off, with the reason, where it is not offered."""
        offer = service.finetune_offer()
        if offer.offered:
            return gr.Checkbox(interactive=True, info=offer.reason)
        return gr.Checkbox(interactive=False, info=offer.reason, value=False)

    @user_errors
    def activate_version(version_id: str | None, request: gr.Request) -> tuple[Any, ...]:
        service.require_login(session_of(request), "activate a model version")
        try:
            message = service.activate(version_id or "")
        except BusyError as busy:
            return busy_outputs(busy, 3)
        return message, service.versions(), gr.Dropdown(choices=service.version_ids(), value=version_id)

    activate.click(activate_version, version, [activate_message, versions, version], api_name="activate")

    def refresh_versions() -> tuple[Any, ...]:
        return service.versions(), gr.Dropdown(choices=service.version_ids())

    tab.select(refresh_versions, None, [versions, version], api_name="versions", show_progress="hidden")
    tab.select(service.pool_outlook, language, outlook, show_progress="hidden")
    # the offer can change once start-up has loaded the source set and the encoder
    tab.select(finetune_option, None, finetune, show_progress="hidden")
    return versions


def busy_outputs(error: BusyError, outputs: int) -> tuple[Any, ...]:
    """What an action answers while the app is busy: a message, and every other output left as it is.

    Raising would put an "Error" badge on every output of the event (the versions table, the picker)
    in this tab, although nothing is wrong with them.
    """
    gr.Warning(str(error))
    return (f"⏳ {error}", *[gr.skip()] * (outputs - 1))
