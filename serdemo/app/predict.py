"""Predict: the emotion of one recording, a timeline of windows for long clips, what is wrong with it."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from serdemo.app.config import MIN_CLIP_SECONDS, QUIET_DBFS
from serdemo.app.ingest import recording_cuts
from serdemo.app.views import NO_SPEECH_LABEL, Prediction, Segment
from serdemo.app.workspace import Workspace
from serdemo.audio import SAMPLE_RATE, AudioInfo, AudioTooLongError, load_audio_checked, segment
from serdemo.cache import embed_waveforms
from serdemo.learn import ClipSet, build_clipset, predict_proba
from serdemo.speech import MIN_SPEECH_S, SpeechActivity, clip_activity


def predict(ws: Workspace, path: str | os.PathLike, language: str | None = None) -> Prediction:
    """Emotion probabilities of an audio file; clips longer than a few seconds also get a timeline.

    Args:
        ws: the app's shared state.
        path: any audio file (WAV, FLAC, OGG, MP3...), any sample rate.
        language: ISO 639-1 code of the speech, so features are normalised like that language's
            training clips; ``None`` uses the statistics of all training clips.

    Raises:
        AudioError: the file is unusable (message says why).
        ServiceError: no model yet, or still starting.
    """
    version_id, result = ws.require_model()
    encoder = ws.encoder_for(version_id)  # a fine-tuned version reads its own encoder's vectors
    try:
        wave, info = load_audio_checked(path, max_seconds=ws.config.max_clip_seconds)
    except AudioTooLongError as error:
        if ws.config.split_above_seconds > 0:  # a pool still takes it, cut into utterances
            raise AudioTooLongError(
                f"{error}. To label it instead, bulk-add it in the Label tab: recordings up to "
                f"{ws.config.max_recording_seconds / 60:g} min join a pool cut at their pauses"
            ) from None
        raise
    windows: list[tuple[float, float, np.ndarray]] = []
    if info.duration_s > ws.config.segment_above_seconds:
        windows = segment(wave, ws.config.segment_window_seconds, ws.config.segment_hop_seconds)
    language = (language or "").strip().lower() or None

    def score() -> tuple[SpeechActivity, list[bool], np.ndarray]:
        activity = clip_activity(wave, ws.frontend)
        # windows without speech are marked, not classified: a model always answers something
        spoken = [activity.speech_seconds(start, end) >= MIN_SPEECH_S for start, end, _ in windows]
        features = embed_waveforms(
            encoder,
            [wave, *(w for (_, _, w), talk in zip(windows, spoken, strict=True) if talk)],
            ws.cache,
        )
        # The whole clip and its windows go through the model separately: in per-speaker mode the feature
        # normaliser standardises a batch of an unseen speaker by its own statistics, and the whole clip's
        # answer must not depend on how it was cut.
        probs = np.concatenate(
            [
                predict_proba(result, _unlabeled(part, language))
                for part in (features[:1], features[1:])
                if len(part)
            ]
        )
        return activity, spoken, probs

    activity, spoken, probs = ws.run_interactive(score)
    classes = result.classes
    rows = iter(probs[1:])
    segments = []
    for (start, end, _), talk in zip(windows, spoken, strict=True):
        if talk:
            row = next(rows)
            segments.append(Segment(start, end, _named(row, classes), classes[int(row.argmax())]))
        else:
            segments.append(Segment(start, end, {}, NO_SPEECH_LABEL, speech=False))
    warnings = recording_warnings(wave, info, activity)
    # a version saved before the speech front end existed has no "frontend" and was trained on whole clips
    trained_with = next(
        (v.config.get("frontend", "none") for v in ws.store.model_versions() if v.id == version_id),
        None,
    )
    if trained_with is not None and trained_with != str(ws.frontend):
        warnings.append(
            f"model version {version_id} was trained with the speech front end {trained_with!r}, "
            f"this app embeds with {str(ws.frontend)!r}: run an adaptation round to retrain it"
        )
    if info.duration_s < MIN_CLIP_SECONDS:
        warnings.append(
            f"the clip is only {info.duration_s:.2f} s long: below {MIN_CLIP_SECONDS} s there is too "
            "little speech to tell an emotion, so the answer means little; record a whole word or phrase"
        )
    utterances = recording_cuts(ws, wave) or []  # what "Add to target pool" would make of it
    top = int(probs[0].argmax())
    return Prediction(
        probs=_named(probs[0], classes),
        top=classes[top],
        confidence=float(probs[0, top]),
        model_version=version_id,
        duration=info.duration_s,
        language=language,
        segments=segments,
        warnings=warnings,
        utterances=utterances,
    )


def recording_warnings(wave: np.ndarray, info: AudioInfo, activity: SpeechActivity) -> list[str]:
    """What is wrong with a recording for emotion recognition: silence, little speech, too quiet, clipped."""
    warnings = []
    span = activity.span()
    speech_s = activity.speech_seconds(0.0, info.duration_s)
    if info.silent:
        warnings.append(
            "the clip is (nearly) silent: the prediction means little; record closer to the microphone"
        )
    elif span is None:
        warnings.append("no speech found in the clip: the prediction means little; speak and record again")
    elif speech_s < 0.4 * info.duration_s:
        warnings.append(
            f"the clip is mostly silence or noise ({speech_s:.1f} s of speech in {info.duration_s:.1f} s): "
            "only the speech is used, but a longer utterance gives a surer answer"
        )
    if not info.silent and span is not None:
        start, end = (round(t * SAMPLE_RATE) for t in span)
        level = 10 * np.log10(float(np.mean(np.square(wave[start:end], dtype=np.float64))) + 1e-20)
        if level < QUIET_DBFS:
            warnings.append(
                f"the speech is very quiet ({level:.0f} dBFS): "
                "record closer to the microphone or raise the input level"
            )
    if info.clipped:
        warnings.append("the clip is clipped (distorted by too loud input): lower the recording level")
    return warnings


def _unlabeled(features: np.ndarray, language: str | None) -> ClipSet:
    """Clips of one recording (no ids, no labels, one unknown speaker) for the model."""
    n = len(features)
    return build_clipset(ids=range(n), languages=[language or ""] * n, features=features)


def _named(row: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
    return {name: float(p) for name, p in zip(classes, row, strict=True)}
