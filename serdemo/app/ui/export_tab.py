"""The Export tab: bundles and label files out and in."""

from __future__ import annotations

import gradio as gr

from serdemo.app.config import EXPORT_FORMATS, ServiceError
from serdemo.app.service import Service
from serdemo.app.ui.widgets import session_of, user_errors


def add_export_tab(service: Service) -> None:
    """Lay out the Export tab and wire its events."""
    gr.Markdown(
        "Download every clip with its labels (yours and the models' pseudo-labels) and the label log; "
        "the labels of a corpus that seeded the pool only measure accuracy and are not exported. "
        "**bundle**: a .zip with the audio, the labels and a manifest of SHA-256 sums, which another "
        "serdemo imports with its audio; **csv** / **jsonl**: the labels alone (label-only exchange, "
        "training elsewhere)."
    )
    with gr.Row():
        fmt = gr.Radio(list(EXPORT_FORMATS), value="bundle", label="Format", elem_id="export-format")
        export = gr.Button("Export labels", elem_id="export-button")
    file = gr.File(label="Export", elem_id="export-file")

    @user_errors
    def run(kind: str, request: gr.Request) -> str:
        service.require_login(session_of(request), "export")
        return str(service.export(kind))

    export.click(run, fmt, file, api_name="export")

    gr.Markdown(
        "Import an export (this store's or another's): a bundle brings its audio, a .csv/.jsonl only "
        "labels of clips already here. Clips and labels already here are skipped."
    )
    with gr.Row():
        upload = gr.File(
            label="Bundle or label file to import",
            file_types=[".zip", ".csv", ".jsonl"],
            elem_id="import-file",
        )
        load = gr.Button("Import labels", elem_id="import-button")
    message = gr.Markdown(elem_id="import-message")

    @user_errors
    def import_labels(path: str | None, request: gr.Request) -> str:
        user = service.require_login(session_of(request), "import")
        if not path:
            raise ServiceError("choose a bundle (.zip), .csv or .jsonl file made by Export first")
        return service.import_labels(path, received_by=user)

    load.click(import_labels, upload, message, api_name="import")
