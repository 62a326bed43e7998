"""Figures and text the tabs show (presentation only: the numbers come from the service)."""

from __future__ import annotations

import plotly.graph_objects as go

from serdemo.app.ui.page import EMOTION_DASHES, EMOTION_MARKERS
from serdemo.app.views import LabelState, Prediction, QueueItem
from serdemo.labels import EMOTION_COLORS

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
    if prediction.utterances:  # the clips "Add to target pool" would make, one per utterance
        xs, ys = [], []
        for start, end in prediction.utterances:
            xs += [start, end, None]
            ys += [0.98, 0.98, None]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                name="utterance (a pool clip)",
                mode="lines",
                line={"color": "dimgrey", "width": 6},
                hovertemplate="utterance %{x:.1f} s<extra></extra>",
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
    if prediction.utterances:
        count = len(prediction.utterances)
        lines.append(
            f"Added to a pool it becomes {count} clip{'s' if count > 1 else ''}, one per utterance "
            "(the grey bars at the top of the timeline), each labeled on its own."
        )
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
