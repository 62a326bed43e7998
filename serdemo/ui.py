"""The Gradio app: lays out the tabs and wires each user action to one call of the service."""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import re
from collections.abc import Callable
from typing import Any

import gradio as gr
import plotly.graph_objects as go

from serdemo.config import AdaptConfig, Balance
from serdemo.finetune import app_finetune_rounds
from serdemo.labels import EMOTIONS
from serdemo.service import (
    COLOR_CHOICES,
    EXPORT_FORMATS,
    RANKING_RULES,
    AdaptRequest,
    BusyError,
    LabelState,
    Prediction,
    QueueItem,
    Service,
    ServiceError,
)
from serdemo.service import _scrub as scrub_paths

LOG = logging.getLogger("serdemo")

TITLE = "serdemo: speech emotion recognition for a new language"
EMOTION_COLORS = {  # one fixed colour per emotion everywhere in the app (Okabe-Ito, colour-blind safe)
    "anger": "#D55E00",
    "fear": "#CC79A7",
    "happiness": "#E69F00",
    "neutral": "#7A7A7A",
    "sadness": "#0072B2",
}
# ... and a line style and marker of its own, so no plot tells emotions apart by colour alone
EMOTION_DASHES = dict(zip(EMOTIONS, ["solid", "dash", "dot", "dashdot", "longdash"], strict=True))
EMOTION_MARKERS = dict(zip(EMOTIONS, ["circle", "square", "diamond", "triangle-up", "x"], strict=True))
SHORTCUT_KEYS = {str(i + 1): f"label-{emotion}" for i, emotion in enumerate(EMOTIONS)} | {
    "s": "label-skip",
    "u": "label-undo",
}

# Keyboard shortcuts of the Label tab. Gradio 6 takes page JS at launch(); it runs once on load.
# Keys only act while the Label tab is visible and never while the user types into a field.
KEYBOARD_JS = """
() => {
  const keys = KEYS;
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    const tag = (target && target.tagName) || "";
    if (["INPUT", "TEXTAREA", "SELECT"].includes(tag) || (target && target.isContentEditable)) return;
    const id = keys[event.key.toLowerCase()];
    if (!id) return;
    let button = document.getElementById(id);
    if (button && button.tagName !== "BUTTON") button = button.querySelector("button");
    // offsetParent is null while the Label tab is hidden: shortcuts must not fire from other tabs
    if (!button || button.offsetParent === null || button.disabled) return;
    event.preventDefault();
    button.click();
  });
}
""".replace("KEYS", json.dumps(SHORTCUT_KEYS))

# Explore: clicking a point plays its clip. Gradio's Plot has no click event, so the page hooks
# plotly's own plotly_click on the two figures and writes the point's key (customdata[0]) into a
# hidden textbox, whose change event asks the server for the audio.
CLICK_TO_PLAY_JS = """
() => {
  const hook = () => {
    const plots = "#explore-before .js-plotly-plot, #explore-after .js-plotly-plot";
    for (const plot of document.querySelectorAll(plots)) {
      if (plot.dataset.serdemoClick || typeof plot.on !== "function") continue;
      plot.dataset.serdemoClick = "1";
      plot.on("plotly_click", (data) => {
        const key = data && data.points && data.points[0] && data.points[0].customdata;
        const button = document.querySelector("#explore-play-clicked button, button#explore-play-clicked");
        if (!key || !button) return;
        const value = Array.isArray(key) ? String(key[0]) : String(key);
        if (!value.startsWith("t:") && !value.startsWith("s:")) return;
        window.serdemoClickedPoint = value;
        button.click();
      });
    }
  };
  setInterval(hook, 500);
}
"""

CSS = """
#status { font-size: 0.9em; }
/* five label buttons side by side, however narrow the column */
.label-buttons { flex-wrap: nowrap !important; gap: 4px !important; }
.label-buttons > * { min-width: 0 !important; flex: 1 1 0 !important; }
.label-buttons button { padding-left: 0.2em; padding-right: 0.2em; }
"""


# Gradio asks for the microphone with getUserMedia({audio: true}), which lets the browser apply automatic
# gain, noise suppression and echo cancellation: they pump the level and smear the pitch and energy contours
# the emotion is heard in, and training audio has none of them. Gradio has no setting for the constraints,
# so this script, run before the app's own code, asks for the raw signal in every audio request.
RAW_MICROPHONE_HEAD = """
<script>
(() => {
  const media = navigator.mediaDevices;
  if (!media || !media.getUserMedia || media.getUserMedia.serdemoRaw) return;
  const original = media.getUserMedia.bind(media);
  const raw = { echoCancellation: false, noiseSuppression: false, autoGainControl: false };
  const patched = (constraints) => {
    if (constraints && constraints.audio) {
      const audio = typeof constraints.audio === "object" ? constraints.audio : {};
      constraints = { ...constraints, audio: { ...raw, ...audio } };
    }
    return original(constraints);
  };
  patched.serdemoRaw = true;
  media.getUserMedia = patched;
})();
</script>
"""


def launch_options() -> dict[str, Any]:
    """Keyword arguments for ``Blocks.launch`` that Gradio 6 no longer takes in ``gr.Blocks(...)``."""
    js = f"() => {{ ({KEYBOARD_JS})(); ({CLICK_TO_PLAY_JS})(); }}"
    # Soft's hint text (info under a field, placeholders) is ~2.5:1 on white; WCAG AA asks 4.5:1
    # (gray-600 #4b5563: 7.6:1; gray-500 #6b7280: 4.8:1)
    theme = gr.themes.Soft().set(
        block_info_text_color="*neutral_600",
        input_placeholder_color="*neutral_500",
        block_info_text_color_dark="*neutral_300",
    )
    return {"js": js, "css": CSS, "theme": theme, "head": RAW_MICROPHONE_HEAD}


def _user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Show a user-caused error (bad file, nothing to label, round running) as a message, not a traceback.

    Messages never name server folders (upload paths, the data folder); anything unexpected is logged
    here with its traceback and the client hears only that it failed.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (ServiceError, ValueError) as error:  # AudioError and ConfigError are ValueErrors
            raise gr.Error(_own_names(scrub_paths(str(error))), print_exception=False) from None
        except Exception:
            LOG.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(
                f"{fn.__name__.replace('_', ' ')} failed unexpectedly; the server log has the details",
                print_exception=False,
            ) from None

    return wrapper


def _session(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None)


# an absolute path in a message: uploads live in Gradio's temporary folder under a hash
_ABSOLUTE_PATH = re.compile(r"(?<![\w.])/(?:[^\s/:'\"`]+/)+([^\s/:'\"`]+)")


def _own_names(message: str) -> str:
    """A message with every absolute path cut to its file name: the user's own, not the server's folders.

    Example:
        >>> _own_names("/tmp/gradio/3f9a/notes.wav: not a readable audio file")
        'notes.wav: not a readable audio file'
    """
    return _ABSOLUTE_PATH.sub(r"\1", message)


# -- figures (presentation only: the numbers come from the service) --------------------------------


def timeline_figure(prediction: Prediction) -> go.Figure:
    """Probability of each emotion over time, one point per segment of a long clip."""
    fig = go.Figure()
    mids = [(s.start + s.end) / 2 for s in prediction.segments]
    for emotion in prediction.probs:
        fig.add_trace(
            go.Scatter(
                x=mids,
                # windows without speech are gaps in the curves (None), not a made-up answer
                y=[s.probs.get(emotion) for s in prediction.segments],
                name=emotion,
                mode="lines+markers",
                line={"color": EMOTION_COLORS.get(emotion), "dash": EMOTION_DASHES.get(emotion, "solid")},
                marker={"symbol": EMOTION_MARKERS.get(emotion, "circle"), "size": 7},
                customdata=[[s.start, s.end] for s in prediction.segments],
                hovertemplate="%{customdata[0]:.1f}-%{customdata[1]:.1f} s: %{y:.2f}<extra>"
                + emotion
                + "</extra>",
            )
        )
    # the top emotion of each segment as coloured bands under the curves, readable at a glance
    for seg in prediction.segments:
        fig.add_vrect(
            x0=seg.start,
            x1=seg.end,
            fillcolor=EMOTION_COLORS.get(seg.top, "grey"),
            opacity=0.06,
            line_width=0,
        )
    silent = [seg for seg in prediction.segments if not seg.speech]
    if silent:
        fig.add_trace(
            go.Scatter(
                x=[(s.start + s.end) / 2 for s in silent],
                y=[0.02] * len(silent),
                name="no speech",
                mode="markers",
                marker={"symbol": "x", "color": "grey"},
                hovertemplate="%{x:.1f} s: no speech, not classified<extra></extra>",
            )
        )
    fig.update_layout(
        title=f"Emotion over time ({len(prediction.segments)} segments)",
        xaxis_title="time (s)",
        yaxis={"title": "probability", "range": [0, 1]},
        height=320,
        margin={"l": 50, "r": 10, "t": 40, "b": 40},
        legend={"orientation": "h", "y": -0.25},
    )
    return fig


def confusion_figure(confusion: list[list[int]], classes: list[str], title: str) -> go.Figure:
    """Confusion matrix as an annotated heat map (rows: true emotion, columns: predicted)."""
    fig = go.Figure(
        go.Heatmap(
            z=confusion, x=classes, y=classes, colorscale="Blues", showscale=False, texttemplate="%{z}"
        )
    )
    fig.update_layout(
        title=title,
        xaxis_title="predicted",
        yaxis={"title": "true", "autorange": "reversed"},
        height=360,
        margin={"l": 80, "r": 10, "t": 40, "b": 60},
    )
    return fig


def counts_figure(counts: dict[str, int], title: str) -> go.Figure:
    """Bar chart of a count per emotion (labels so far, pseudo-labels accepted)."""
    fig = go.Figure(
        go.Bar(
            x=list(counts),
            y=list(counts.values()),
            marker_color=[EMOTION_COLORS.get(e) for e in counts],
            text=list(counts.values()),
            textposition="auto",
        )
    )
    top = max([*counts.values(), 1])
    fig.update_layout(
        title=title,
        height=260,
        margin={"l": 40, "r": 10, "t": 40, "b": 40},
        yaxis={"range": [0, top * 1.15], "rangemode": "tozero", "dtick": max(1, round(top / 5))},
    )
    return fig


def spectrogram_figure(item: QueueItem) -> go.Figure:
    """Spectrogram of the clip being labeled (0-8 kHz)."""
    fig = go.Figure(
        go.Heatmap(
            z=item.spectrogram,
            x=item.spectrogram_times,
            y=item.spectrogram_freqs / 1000,
            colorscale="Viridis",
            showscale=False,
            hovertemplate="%{x:.2f} s, %{y:.1f} kHz: %{z:.0f} dB<extra></extra>",
        )
    )
    fig.update_layout(
        height=200,
        margin={"l": 50, "r": 10, "t": 10, "b": 40},
        xaxis_title="time (s)",
        yaxis_title="kHz",
    )
    return fig


# -- text ---------------------------------------------------------------------------------------


def prediction_markdown(prediction: Prediction) -> str:
    """Top emotion, confidence, model version and any warnings about the audio."""
    lines = [
        f"### {prediction.top} ({prediction.confidence:.0%})",
        f"Model version **{prediction.model_version}** · clip {prediction.duration:.1f} s",
    ]
    if prediction.segments:
        lines.append(f"Long clip: {len(prediction.segments)} segments, see the timeline below.")
    lines += [f"⚠️ {warning}" for warning in prediction.warnings]
    return "\n\n".join(lines)


def suggestion_markdown(item: QueueItem | None, state: LabelState) -> str:
    """What the model thinks of the clip to label, and why it was chosen."""
    if item is None:
        return (
            "### Nothing left to label\nAdd clips (Predict tab or bulk add below), or pick another language."
        )
    name = "(file name hidden)" if state.hide_names else item.name
    return (
        f"### Clip {item.clip_id}: {name}\n"
        f"Model suggests **{item.suggestion}** ({item.confidence:.0%}) · {item.duration:.1f} s · "
        f"ranked by {state.rule.replace('_', ' ')} (score {item.score:.3f})\n\n"
        "Keys: **1** anger · **2** fear · **3** happiness · **4** neutral · **5** sadness · "
        "**s** skip · **u** undo"
    )


def progress_markdown(counts: dict[str, int], unlabeled: int) -> str:
    """Labels per class and what is left."""
    total = sum(counts.values())
    per_class = " · ".join(f"{emotion} {count}" for emotion, count in counts.items())
    return f"**{total} labeled** ({per_class}) · {unlabeled} unlabeled left"


# -- the app ------------------------------------------------------------------------------------


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
        _login_box(service)
        status = gr.Markdown(service.status(), elem_id="status")
        timer = gr.Timer(2.0)
        timer.tick(
            service.status, None, status, show_progress="hidden", api_visibility="private", queue=False
        )

        languages: list[gr.Dropdown] = []  # every language picker: its choices are the store's languages
        versions: list[_VersionPicker] = []  # every version picker: its choices are the store's versions
        with gr.Tabs():
            with gr.Tab("Predict", id="predict"):
                _predict_tab(service, languages)
            with gr.Tab("Label", id="label") as label_tab:
                _label_tab(service, label_tab, languages)
            with gr.Tab("Adapt", id="adapt") as adapt_tab:
                table = _adapt_tab(service, adapt_tab, languages, versions)
            with gr.Tab("Explore", id="explore"):
                _explore_tab(service, languages, versions)
            with gr.Tab("Export", id="export"):
                _export_tab(service)

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


@dataclasses.dataclass(frozen=True)
class _VersionPicker:
    """A dropdown of model versions and the value it falls back to when its version is gone."""

    dropdown: gr.Dropdown
    default: Callable[[], str | None]


def _store_dropdown(*args: Any, **kwargs: Any) -> gr.Dropdown:
    """A dropdown whose choices come from the store, so they grow after the page was built.

    It takes any value (the service checks it and says what exists), and its API description says
    "a string" rather than Gradio's enum of the choices known when the page was built, which clients
    would trust and which is empty in a fresh data folder. (Set on the instance: a Dropdown subclass
    would make Gradio write a .pyi file beside this module at import.)
    """
    dropdown = gr.Dropdown(*args, allow_custom_value=True, **kwargs)
    dropdown.api_info = lambda: {"type": "string"}  # type: ignore[method-assign]
    return dropdown


def _login_box(service: Service) -> None:
    """Log in / out (only with SERDEMO_AUTH); also the /login and /logout API endpoints."""
    with gr.Accordion("Log in to label, adapt, import and export", open=True, visible=service.login_required):
        with gr.Row():
            user = gr.Textbox(label="User", max_lines=1, elem_id="login-user")
            password = gr.Textbox(label="Password", type="password", max_lines=1, elem_id="login-password")
            with gr.Column():
                log_in = gr.Button("Log in", variant="primary", elem_id="login-button")
                log_out = gr.Button("Log out", size="sm", elem_id="logout-button")
        message = gr.Markdown(elem_id="login-message")

    @_user_errors
    def login(name: str, secret: str, request: gr.Request) -> tuple[str, str]:
        """Log this session in; labels, rounds, imports and exports then work under this user."""
        return service.login(_session(request), name, secret), ""

    @_user_errors
    def logout(request: gr.Request) -> str:
        """End this session's login."""
        return service.logout(_session(request))

    log_in.click(login, [user, password], [message, password], api_name="login")
    password.submit(login, [user, password], [message, password], api_visibility="private")
    log_out.click(logout, None, message, api_name="logout")


def _language_dropdown(
    service: Service,
    registry: list[gr.Dropdown],
    label: str = "Target language",
    info: str | None = None,
    elem_id: str | None = None,
    preset: bool = True,
) -> gr.Dropdown:
    dropdown = _store_dropdown(
        choices=service.languages(),
        value=service.default_language() if preset else None,
        label=label,
        info=info or "ISO 639-1 code, e.g. de, it, fr; type a new one to start a pool",
        filterable=True,
        elem_id=elem_id,
    )
    dropdown.serdemo_preset = preset  # read by the store refresh in build_app
    registry.append(dropdown)
    return dropdown


def _predict_tab(service: Service, languages: list[gr.Dropdown]) -> None:
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
                language = _language_dropdown(
                    service,
                    languages,
                    "Language of this clip",
                    "normalises features like this language's clips; "
                    "choose it to add the clip to that language's pool",
                    elem_id="predict-language",
                    preset=False,  # a clip joins a pool only in a language someone chose for it
                )
                add_button = gr.Button("Add to target pool", interactive=False, elem_id="add-to-pool")
            pool_message = gr.Markdown()
        with gr.Column(scale=1):
            summary = gr.Markdown("Upload or record a clip, or click an example.", elem_id="predict-summary")
            probs = gr.Label(
                num_top_classes=len(EMOTIONS), label="Emotion probabilities", elem_id="predict-label"
            )
            timeline = gr.Plot(label="Timeline", visible=False, elem_id="predict-timeline")
            with gr.Accordion("Result as JSON", open=False):
                details = gr.JSON(label="prediction")

    @_user_errors
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
        @_user_errors
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

    @_user_errors
    def add_to_pool(path: str | None, lang: str, request: gr.Request) -> str:
        service.require_login(_session(request), "add clips to a pool")
        if not path:
            raise ServiceError("no audio yet: upload or record a clip first")
        return service.add_to_pool(path, lang)

    add_button.click(add_to_pool, [audio, language], pool_message, api_name="add_to_pool")


def _label_tab(service: Service, tab: gr.Tab, languages: list[gr.Dropdown]) -> None:
    state = gr.State(LabelState())
    with gr.Row():
        language = _language_dropdown(service, languages, elem_id="label-language")
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
                bulk_language = _language_dropdown(
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
            counts_figure(view.counts, f"Labels so far ({view.state.language})"),
        )

    @_user_errors
    def refresh(lang: str, how: str, current: LabelState, request: gr.Request) -> tuple[Any, ...]:
        service.require_login(_session(request), "label")  # the pool's audio is the annotators' data
        return show(service.label_view(current.with_settings(lang, how)))

    @_user_errors
    def skip(lang: str, how: str, current: LabelState, request: gr.Request) -> tuple[Any, ...]:
        service.require_login(_session(request), "label")
        return show(service.skip(current.with_settings(lang, how)))

    @_user_errors
    def undo(lang: str, how: str, who: str, current: LabelState, request: gr.Request) -> tuple[Any, ...]:
        return show(service.undo(current.with_settings(lang, how), _annotator(service, who, request)))

    def labeler(emotion: str) -> Callable[..., tuple[Any, ...]]:
        @_user_errors
        def label_on_screen(
            lang: str, how: str, who: str, current: LabelState, request: gr.Request
        ) -> tuple[Any, ...]:
            return show(
                service.label_current(
                    current.with_settings(lang, how), emotion, _annotator(service, who, request)
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

    @_user_errors
    def bulk_add(
        paths: list[str] | None,
        lang: str,
        request: gr.Request,
        progress=gr.Progress(),  # noqa: B008  (Gradio's way to ask for a progress bar)
    ) -> str:
        service.require_login(_session(request), "add clips to a pool")
        return service.add_files(paths or [], lang, progress=lambda frac, text: progress(frac, desc=text))

    def follow(lang: str | None, current: str | None) -> Any:
        # the clips just added are what this person wants to label next
        added = (lang or "").strip().lower()
        return gr.Dropdown(value=added or current)

    bulk_button.click(bulk_add, [files, bulk_language], bulk_message, api_name="bulk_add").success(
        follow, [bulk_language, language], language, **private
    ).then(refresh, settings, outputs, **private)

    # The same action for scripts, any clip by id: client.predict(12, "anger", "ada", api_name="/label")
    @_user_errors
    def label(
        clip_id: int, emotion: str, annotator: str = "api", request: gr.Request = None
    ) -> dict[str, Any]:
        """Save a human label for clip ``clip_id``; returns the clip's language and the labels per class.

        With accounts (SERDEMO_AUTH) the label is saved under the logged-in user, whatever ``annotator`` says.
        """
        if not isinstance(clip_id, (int, float, str)) or not str(clip_id).strip().lstrip("-").isdigit():
            raise ServiceError(f"clip id must be a whole number, got {str(clip_id)[:40]!r}")
        return service.label(
            int(str(clip_id).strip()), emotion, _annotator(service, annotator or "api", request)
        )

    gr.api(label, api_name="label")


def _annotator(service: Service, name: str, request: gr.Request | None) -> str:
    """The name labels are saved under: the login with accounts; else what the user typed, else the session.

    With accounts nobody can label (or undo) under another person's name by typing it.
    """
    user = service.require_login(_session(request), "label")
    if user is not None:
        return user
    if name and name.strip():
        return name.strip()
    if request is not None and getattr(request, "username", None):
        return str(request.username)
    session = getattr(request, "session_hash", None) or "anonymous"
    return f"web-{session[:8]}"


def _adapt_tab(
    service: Service, tab: gr.Tab, languages: list[gr.Dropdown], pickers: list[_VersionPicker]
) -> gr.Dataframe:
    """The Adapt tab; returns its versions table, which follows the store like the pickers."""
    with gr.Row():
        with gr.Column(scale=1):
            language = _language_dropdown(service, languages, elem_id="adapt-language")
            policy = gr.Radio(["hard", "soft", "none"], value=AdaptConfig.policy, label="Pseudo-label policy")
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
            offered, why = app_finetune_rounds()  # shown either way, so a user learns why it is off
            gr.Checkbox(
                value=False,
                interactive=offered,
                label="Fine-tune the encoder",
                info=why,
                elem_id="adapt-finetune",
            )
            start = gr.Button("Start adaptation round", variant="primary", elem_id="adapt-start")
        with gr.Column(scale=2):
            result = gr.Markdown("No round run in this session yet.", elem_id="adapt-result")
            with gr.Row():
                source_confusion = gr.Plot(show_label=False, visible=False)
                target_confusion = gr.Plot(show_label=False, visible=False)
            pseudo = gr.Plot(show_label=False, visible=False)
    gr.Markdown("### Model versions")
    versions = gr.Dataframe(service.versions(), interactive=False, elem_id="versions", wrap=True)
    with gr.Row():
        version = _store_dropdown(
            service.version_ids(), value=None, label="Version", elem_id="version-choice"
        )
        pickers.append(_VersionPicker(version, lambda: None))
        activate = gr.Button("Activate (roll back / forward)", elem_id="version-activate")
        activate_message = gr.Markdown(elem_id="activate-message")

    @_user_errors
    def adapt(
        lang: str,
        how: str,
        t: float,
        e: float,
        w: float,
        rb: bool,
        bal: str,
        request: gr.Request,
        progress=gr.Progress(),  # noqa: B008  (Gradio's way to ask for a progress bar)
    ) -> tuple[Any, ...]:
        service.require_login(_session(request), "run an adaptation round")
        request = AdaptRequest(
            language=lang, policy=how, tau=t, epochs=int(e), window=int(w), rebalance=rb, pseudo_balance=bal
        )
        try:
            report = service.adapt(request, progress=lambda frac, text: progress(frac, desc=text))
        except BusyError as busy:  # another tab's round: a message here, the other outputs stay as they are
            return _busy(busy, 6)
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
        [language, policy, tau, epochs, window, rebalance, balance],
        [result, source_confusion, target_confusion, pseudo, versions, version],
        api_name="adapt",
        # 2, not 1: a second click must reach the service and hear "a round is running" at once,
        # instead of silently queueing a second round behind the first
        concurrency_limit=2,
    )

    @_user_errors
    def activate_version(version_id: str | None, request: gr.Request) -> tuple[Any, ...]:
        service.require_login(_session(request), "activate a model version")
        try:
            message = service.activate(version_id or "")
        except BusyError as busy:
            return _busy(busy, 3)
        return message, service.versions(), gr.Dropdown(choices=service.version_ids(), value=version_id)

    activate.click(activate_version, version, [activate_message, versions, version], api_name="activate")

    def refresh_versions() -> tuple[Any, ...]:
        return service.versions(), gr.Dropdown(choices=service.version_ids())

    tab.select(refresh_versions, None, [versions, version], api_name="versions", show_progress="hidden")
    return versions


def _busy(error: BusyError, outputs: int) -> tuple[Any, ...]:
    """What an action answers while the app is busy: a message, and every other output left as it is.

    Raising would put an "Error" badge on every output of the event (the versions table, the picker)
    in this tab, although nothing is wrong with them.
    """
    gr.Warning(str(error))
    return (f"⏳ {error}", *[gr.skip()] * (outputs - 1))


def _explore_tab(service: Service, languages: list[gr.Dropdown], pickers: list[_VersionPicker]) -> None:
    with gr.Row():
        language = _language_dropdown(service, languages)
        method = gr.Radio(["pca", "umap"], value="pca", label="Projection")
        dims = gr.Radio([2, 3], value=2, label="Dimensions")
        color_by = gr.Radio(list(COLOR_CHOICES), value="emotion", label="Colour by")
    with gr.Row():
        baseline = _store_dropdown(
            service.version_ids(),
            value=service.baseline_version_id(),
            label="Baseline (left)",
            info="default: the first source-only model",
            elem_id="explore-baseline",
        )
        compared = _store_dropdown(
            service.version_ids(),
            value=None,
            label="Compared with (right)",
            info="empty: the active model",
            elem_id="explore-compared",
        )
        draw = gr.Button("Draw", variant="primary", elem_id="explore-draw")
    pickers += [_VersionPicker(baseline, service.baseline_version_id), _VersionPicker(compared, lambda: None)]
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

    @_user_errors
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

    @_user_errors
    def play(key: str | None, request: gr.Request) -> str | None:
        service.require_login(_session(request), "play pool clips")
        return service.clip_path(key) if key else None

    clip.change(play, clip, clip_audio, api_visibility="private")
    play_clicked.click(
        play,
        clicked,
        clip_audio,
        js="() => window.serdemoClickedPoint || null",
        api_visibility="private",
    )


def _export_tab(service: Service) -> None:
    gr.Markdown(
        "Download every clip's labels (human, machine and corpus gold) with the label log. "
        "**bundle**: a .zip with the audio, the labels and a manifest of SHA-256 sums, which another "
        "serdemo imports with its audio; **csv** / **jsonl**: the labels alone (label-only exchange, "
        "training elsewhere)."
    )
    with gr.Row():
        fmt = gr.Radio(list(EXPORT_FORMATS), value="bundle", label="Format", elem_id="export-format")
        export = gr.Button("Export labels", elem_id="export-button")
    file = gr.File(label="Export", elem_id="export-file")

    @_user_errors
    def run(kind: str, request: gr.Request) -> str:
        service.require_login(_session(request), "export")
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

    @_user_errors
    def import_labels(path: str | None, request: gr.Request) -> str:
        user = service.require_login(_session(request), "import")
        if not path:
            raise ServiceError("choose a bundle (.zip), .csv or .jsonl file made by Export first")
        return service.import_labels(path, received_by=user)

    load.click(import_labels, upload, message, api_name="import")
