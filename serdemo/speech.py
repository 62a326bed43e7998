"""Speech activity before embedding: trim what is not speech, pool frames by how likely they are speech.

Training corpora are tightly cut acted clips; real recordings have silence, room noise and pauses
around the speech, and a mean over every encoder frame lets those frames outvote the speech (issue 16:
0.5 s + 1 s of padding changed the top emotion of about half the clips). :class:`SpeechEncoder` wraps
any encoder so that every path that embeds audio (predict, pool ingest, the timeline, the experiment
CLI, the shipped source set) first finds the speech with a voice activity detector, cuts the clip to
it, and weights each encoder frame by its speech probability in the mean+std pooling. The front end's
settings are part of the encoder's identity, so the embedding cache never mixes its vectors with
those of another front end.

The default detector is Silero VAD (MIT, a 2 MB network shipped inside the ``silero-vad`` wheel, run
with torch, no download); ``webrtc`` (``webrtcvad-wheels``) and ``energy`` (frame level against the
clip's own noise floor, :func:`serdemo.audio.speech_segments`) are the alternatives
``bench/vad_choice.py`` compares them with.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from serdemo.audio import SAMPLE_RATE, speech_segments
from serdemo.encoders.base import UtteranceEncoder, pad_batch
from serdemo.silero_sequence import silero_probs

DETECTORS = ("silero", "webrtc", "energy")
MIN_SPEECH_S = 0.25  # a timeline window with less speech than this is marked "no speech", not classified
SPEECH_THRESHOLD = 0.5  # Silero's own default decision threshold
MIN_WEIGHT = 0.02  # every frame keeps a little weight, so a clip without speech still pools evenly
SPEECH_DBFS = -25.0  # RMS of the speech after level normalisation (FrontEnd.level)
# how a long recording is cut into utterances (bench/utterance_cut.py: corpus sentences, pauses, noise)
UTTERANCE_PAUSE_S = 0.25  # a pause this long ends an utterance: cuts at 0.3 s, splits few sentences
UTTERANCE_SPEECH_S = 0.25  # speech an utterance needs: quiet sentences get ~0.3 s of frames over 0.5


@dataclass(frozen=True)
class FrontEnd:
    """How audio is prepared before the encoder; ``str(frontend)`` goes into the encoder identity.

    Attributes:
        detector: ``"silero"``, ``"webrtc"``, ``"energy"``, or ``"none"`` for the whole clip as it is.
        margin_s: audio kept before the first and after the last speech frame (soft onsets, breaths).
        weighted: weight encoder frames by speech probability when pooling (else a plain mean+std).
        fill: where the margin reaches past the clip's edge, fill it with digital silence, so a tightly
            cut clip reaches the encoder as it would inside a longer silent recording (``-fill``).
        level: scale the cut so its speech is at :data:`SPEECH_DBFS` RMS (``-level``): how loud a clip
            is says more about the microphone than the emotion (RAVDESS's median speech levels differ by
            emotion by up to 16 dB, EMO-DB's by 4), and Whisper's log-mel keeps absolute level.

    Example:
        >>> str(FrontEnd())
        'silero-trim0.25-fill-level-weighted'
        >>> FrontEnd.parse("energy-trim0.2") == FrontEnd("energy", 0.2, False, fill=False, level=False)
        True

    """

    detector: str = "silero"
    margin_s: float = 0.25
    weighted: bool = True
    fill: bool = True
    level: bool = True

    _PATTERN = re.compile(
        r"(?P<detector>[a-z]+)-trim(?P<margin>[0-9.]+)(?P<fill>-fill)?(?P<level>-level)?(?P<weighted>-weighted)?"
    )

    def __post_init__(self) -> None:
        if self.detector not in (*DETECTORS, "none"):
            raise ValueError(
                f"speech detector must be one of {', '.join(DETECTORS)} or none, got {self.detector!r}"
            )
        if self.margin_s < 0:
            raise ValueError(f"margin must be >= 0 s, got {self.margin_s}")

    def __str__(self) -> str:
        if self.detector == "none":
            return "none"
        return (
            f"{self.detector}-trim{self.margin_s:g}"
            + ("-fill" if self.fill else "")
            + ("-level" if self.level else "")
            + ("-weighted" if self.weighted else "")
        )

    @classmethod
    def parse(cls, text: str | FrontEnd) -> FrontEnd:
        """Read ``"none"`` or ``"<detector>-trim<margin>[-weighted]"`` (the form ``str`` gives)."""
        if isinstance(text, FrontEnd):
            return text
        if text == "none":
            return cls("none", 0.0, weighted=False, fill=False, level=False)
        match = cls._PATTERN.fullmatch(text)
        if match is None:
            raise ValueError(
                f"unknown speech front end {text!r}: use 'none' or e.g. 'silero-trim0.25-fill-level-weighted'"
                f" (the default), 'webrtc-trim0.1', 'energy-trim0.1' (detectors: {', '.join(DETECTORS)})"
            )
        return cls(
            match["detector"],
            float(match["margin"]),
            bool(match["weighted"]),
            fill=bool(match["fill"]),
            level=bool(match["level"]),
        )


# ----------------------------------------------------------------------------------------------
# speech probability per frame


@dataclass(frozen=True)
class SpeechActivity:
    """Speech probability of consecutive frames of ``hop_s`` seconds from the clip's start."""

    probs: np.ndarray  # (frames,) in [0, 1]
    hop_s: float

    def at(self, times_s: np.ndarray) -> np.ndarray:
        """Probability at arbitrary times (linear between frame centres)."""
        if len(self.probs) == 0:
            return np.zeros(len(times_s), np.float32)
        centres = (np.arange(len(self.probs)) + 0.5) * self.hop_s
        return np.interp(times_s, centres, self.probs).astype(np.float32)

    def span(self, threshold: float = SPEECH_THRESHOLD) -> tuple[float, float] | None:
        """(start_s, end_s) from the first to the last frame at or above ``threshold``; None if none is."""
        active = np.flatnonzero(self.probs >= threshold)
        if len(active) == 0:
            return None
        return float(active[0] * self.hop_s), float((active[-1] + 1) * self.hop_s)

    def speech_seconds(self, start_s: float, end_s: float, threshold: float = SPEECH_THRESHOLD) -> float:
        """Seconds of speech frames (probability >= ``threshold``) between ``start_s`` and ``end_s``."""
        window = self.probs[int(start_s / self.hop_s) : int(np.ceil(end_s / self.hop_s))]
        return float(np.sum(window >= threshold)) * self.hop_s


_RECENT: OrderedDict[tuple[str, str], SpeechActivity] = OrderedDict()  # predict asks twice per clip
_RECENT_LOCK = threading.Lock()


def speech_activity(wave: np.ndarray, detector: str = "silero") -> SpeechActivity:
    """Frame-level speech probability of a 16 kHz clip with ``detector`` (see :data:`DETECTORS`).

    The last few answers are remembered by the samples' hash (0.1 ms for 3 s), since a prediction
    needs the activity for its warnings and timeline and again inside :meth:`SpeechEncoder.embed`.
    """
    wave = np.ascontiguousarray(wave, dtype=np.float32)
    key = (detector, hashlib.sha256(wave.tobytes()).hexdigest())
    with _RECENT_LOCK:
        if key in _RECENT:
            _RECENT.move_to_end(key)
            return _RECENT[key]
    activity = _detect(wave, detector)
    with _RECENT_LOCK:
        _RECENT[key] = activity
        while len(_RECENT) > 16:
            _RECENT.popitem(last=False)
    return activity


def _detect(wave: np.ndarray, detector: str) -> SpeechActivity:
    if detector == "silero":
        # Silero is a recurrent network: onsets register within a frame, but its probability decays for
        # ~0.3 s after speech ends, which would keep that much trailing noise. Running it also on the
        # reversed clip turns offsets into onsets; the minimum of both is tight at both ends. 8 frames of
        # zeros on each side let both passes start from "no speech". Both passes run as one batch of whole
        # sequences (serdemo.silero_sequence: 6x faster than silero-vad's call per frame, same numbers).
        chunk, lead = 512, 8  # Silero's frame at 16 kHz (32 ms); 0.26 s
        padded = np.pad(wave, (lead * chunk, lead * chunk + (-len(wave) % chunk)))
        forward, backward = silero_probs([padded, padded[::-1].copy()])
        both = np.minimum(forward, backward[::-1])
        frames = int(np.ceil(len(wave) / chunk))
        return SpeechActivity(both[lead : lead + frames].astype(np.float32), chunk / SAMPLE_RATE)
    if detector == "webrtc":
        import webrtcvad

        frame = 480  # 30 ms, the longest frame webrtcvad takes
        vad = webrtcvad.Vad(3)  # most aggressive: fewest noise frames taken for speech
        pcm = (np.clip(np.pad(wave, (0, -len(wave) % frame)), -1, 1) * 32767).astype("<i2").tobytes()
        flags = [vad.is_speech(pcm[i : i + 2 * frame], SAMPLE_RATE) for i in range(0, len(pcm), 2 * frame)]
        return SpeechActivity(np.array(flags, np.float32), frame / SAMPLE_RATE)
    if detector == "energy":
        hop = 0.01
        probs = np.zeros(int(np.ceil(len(wave) / SAMPLE_RATE / hop)), np.float32)
        for start, end in speech_segments(wave, pad_s=0.0):
            probs[int(start / hop) : int(np.ceil(end / hop))] = 1.0
        return SpeechActivity(probs, hop)
    raise ValueError(f"unknown speech detector {detector!r}: use one of {', '.join(DETECTORS)}")


def with_silent_edges(wave: np.ndarray, margin_s: float) -> np.ndarray:
    """``wave`` with ``margin_s`` of digital silence before and after it (the ``-fill`` front ends)."""
    edge = np.zeros(round(margin_s * SAMPLE_RATE), np.float32)
    return np.concatenate([edge, np.asarray(wave, np.float32), edge])


def clip_activity(wave: np.ndarray, frontend: FrontEnd) -> SpeechActivity:
    """Speech activity on the clip's own time axis, from the analysis the front end makes of it anyway.

    A ``-fill`` front end analyses the clip with silent edges (:meth:`SpeechEncoder.prepare`); reading
    the clip's activity off that analysis, shifted by the margin, spares predict a second detector pass
    (both calls hit :func:`speech_activity`'s memory). Without a detector, the energy detector answers.
    """
    detector = frontend.detector if frontend.detector != "none" else "energy"
    if not frontend.fill or detector != frontend.detector:
        return speech_activity(wave, detector)
    analysed = speech_activity(with_silent_edges(wave, frontend.margin_s), detector)
    frames = int(np.ceil(len(wave) / SAMPLE_RATE / analysed.hop_s))
    centres = (np.arange(frames) + 0.5) * analysed.hop_s + frontend.margin_s
    return SpeechActivity(analysed.at(centres), analysed.hop_s)


def trim(wave: np.ndarray, activity: SpeechActivity, margin_s: float, min_s: float = 0.25) -> tuple[int, int]:
    """Sample range ``(start, end)`` of the speech plus ``margin_s``; the whole clip when no speech is found.

    A detected span shorter than ``min_s`` is widened around its centre, so the encoder always sees
    enough audio (Whisper needs 25 ms, and a 50 ms blip says nothing about emotion).
    """
    span = activity.span()
    if span is None:
        return 0, len(wave)
    start, end = span[0] - margin_s, span[1] + margin_s
    if end - start < min_s:
        centre = (start + end) / 2
        start, end = centre - min_s / 2, centre + min_s / 2
    first = max(0, int(round(start * SAMPLE_RATE)))
    last = min(len(wave), int(round(end * SAMPLE_RATE)))
    return (first, last) if last - first >= 0.025 * SAMPLE_RATE else (0, len(wave))


def utterance_spans(
    activity: SpeechActivity,
    duration_s: float,
    max_s: float = 10.0,
    min_pause_s: float = UTTERANCE_PAUSE_S,
    min_speech_s: float = UTTERANCE_SPEECH_S,
    margin_s: float = 0.25,
) -> list[tuple[float, float]]:
    """Where a long recording's utterances are, ``(start_s, end_s)``, so each can be labeled on its own.

    A call, a talk show or a person's long take holds many utterances, often in different emotions; one
    label for all of it would be wrong. Speech frames (probability >= :data:`SPEECH_THRESHOLD`) separated
    by pauses shorter than ``min_pause_s`` stay in one utterance; an utterance with less than
    ``min_speech_s`` of speech is dropped (too little to carry an emotion, as in pools); one longer than
    ``max_s`` is cut into equal parts no longer than ``max_s`` (the models see ~2 s at a time anyway).
    Each utterance keeps ``margin_s`` of audio around it, never reaching into its neighbour.

    Example:
        >>> probs = np.array([0, 1, 1, 1, 0, 0, 0, 1, 1, 0], np.float32)  # 0.5 s frames
        >>> utterance_spans(SpeechActivity(probs, 0.5), 5.0, margin_s=0.0)
        [(0.5, 2.0), (3.5, 4.5)]

    """
    active = np.flatnonzero(activity.probs >= SPEECH_THRESHOLD)
    if len(active) == 0:
        return []
    hop = activity.hop_s
    # runs of speech frames, merged across short pauses: [first frame, last frame, speech frames]
    runs: list[list[int]] = []
    for frame in active.tolist():
        if runs and (frame - runs[-1][1] - 1) * hop < min_pause_s:
            runs[-1][1] = frame
            runs[-1][2] += 1
        else:
            runs.append([frame, frame, 1])
    cores = [(first * hop, (last + 1) * hop) for first, last, speech in runs if speech * hop >= min_speech_s]
    spans: list[tuple[float, float]] = []
    for i, (start, end) in enumerate(cores):
        # margins reach at most halfway to the neighbouring utterance
        before = start if i == 0 else (start - cores[i - 1][1]) / 2
        after = duration_s - end if i == len(cores) - 1 else (cores[i + 1][0] - end) / 2
        start, end = max(0.0, start - min(margin_s, before)), min(duration_s, end + min(margin_s, after))
        parts = max(1, int(np.ceil((end - start) / max_s - 1e-9)))
        edges = np.linspace(start, end, parts + 1).round(3).tolist()
        spans += list(zip(edges[:-1], edges[1:], strict=True))
    return spans


def at_speech_level(wave: np.ndarray, probs: np.ndarray, hop_s: float) -> np.ndarray:
    """``wave`` scaled so that its speech frames (probability >= 0.5) have :data:`SPEECH_DBFS` RMS.

    A clip without a speech frame, or silent, is returned as it is.
    """
    hop = round(hop_s * SAMPLE_RATE)
    speech = np.repeat(probs >= SPEECH_THRESHOLD, hop)[: len(wave)]
    if not speech.any():
        return wave
    rms = float(np.sqrt(np.mean(np.square(wave[: len(speech)][speech], dtype=np.float64))))
    if rms < 1e-6:
        return wave
    return (wave * (10 ** (SPEECH_DBFS / 20) / rms)).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# the encoder wrapper


def weighted_mean_std_pool(hidden: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted mean and standard deviation over time: (B, L, T, D), (B, T) -> (B, L, 2 * D).

    Padded frames must have weight 0. With equal weights this is :func:`~serdemo.encoders.base.mean_std_pool`.
    """
    w = weights[:, None, :, None].to(hidden.dtype)
    total = w.sum(dim=2).clamp_min(1e-8)
    mean = (hidden * w).sum(dim=2) / total
    var = (((hidden - mean[:, :, None, :]) ** 2) * w).sum(dim=2) / total
    return torch.cat([mean, var.clamp_min(1e-8).sqrt()], dim=-1)


class SpeechEncoder(UtteranceEncoder):
    """An encoder that embeds only the speech of each clip (see the module docstring).

    :meth:`forward` is the wrapped encoder's, untouched (fine-tuning trains on crops through it);
    :meth:`embed`, which every cached embedding goes through, trims and pools by speech.

    Example:
        >>> from serdemo.encoders.whisper import WhisperEncoder, base_config
        >>> inner = WhisperEncoder.random(base_config(d_model=16, encoder_layers=2,
        ...     encoder_attention_heads=2, encoder_ffn_dim=32))
        >>> encoder = SpeechEncoder(inner, FrontEnd("energy"))
        >>> encoder.identity.endswith("/energy-trim0.25-fill-level-weighted")
        True

    """

    def __init__(self, inner: UtteranceEncoder, frontend: FrontEnd | str = FrontEnd()) -> None:
        super().__init__()
        self.inner = inner
        self.frontend = FrontEnd.parse(frontend)
        self.name = inner.name
        self.num_layers = inner.num_layers
        self.hidden_size = inner.hidden_size

    @property
    def identity(self) -> str:
        """The wrapped encoder's identity plus the front end's settings."""
        return f"{self.inner.identity}/{self.frontend}"

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The wrapped encoder's frame features, unchanged."""
        return self.inner(waveforms, lengths)

    def prepare(self, wave: np.ndarray) -> tuple[np.ndarray, SpeechActivity]:
        """The clip cut to its speech, and the speech activity of that cut."""
        if self.frontend.fill:
            filled = with_silent_edges(wave, self.frontend.margin_s)
            if speech_activity(filled, self.frontend.detector).span() is not None:
                wave = filled  # (a clip without speech stays as it is: nothing to centre the margin on)
        activity = speech_activity(wave, self.frontend.detector)
        start, end = trim(wave, activity, self.frontend.margin_s)
        shift = start / SAMPLE_RATE
        kept = activity.at(
            (np.arange(int(np.ceil((end - start) / SAMPLE_RATE / activity.hop_s))) + 0.5) * activity.hop_s
            + shift
        )
        cut = wave[start:end]
        if self.frontend.level:
            cut = at_speech_level(cut, kept, activity.hop_s)
        return cut, SpeechActivity(kept, activity.hop_s)

    @torch.no_grad()
    def embed(self, waveforms: Sequence[np.ndarray], batch_size: int = 8) -> np.ndarray:
        """Per-layer speech-weighted mean+std vectors of the speech of each clip, (N, L, 2 * D) float32."""
        if self.frontend.detector == "none":
            return self.inner.embed(waveforms, batch_size)
        prepared = [self.prepare(np.asarray(w, dtype=np.float32)) for w in waveforms]
        was_training = self.inner.training
        self.inner.eval()
        out = np.zeros((len(prepared), self.num_layers, 2 * self.hidden_size), np.float32)
        order = np.argsort([len(w) for w, _ in prepared])
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch, lengths = pad_batch([prepared[i][0] for i in idx])
            device = next(iter([*self.inner.parameters(), *self.inner.buffers()]), batch).device
            hidden, frame_lengths = self.inner(batch.to(device), lengths.to(device))  # honours .to(device)
            weights = torch.zeros(hidden.shape[0], hidden.shape[2])
            for row, i in enumerate(idx):
                frames = int(frame_lengths[row])
                if self.frontend.weighted:
                    seconds = len(prepared[i][0]) / SAMPLE_RATE
                    centres = (np.arange(frames) + 0.5) * seconds / frames
                    weights[row, :frames] = torch.from_numpy(
                        np.maximum(prepared[i][1].at(centres), MIN_WEIGHT)
                    )
                else:
                    weights[row, :frames] = 1.0
            out[idx] = weighted_mean_std_pool(hidden, weights.to(device)).cpu().numpy()
        self.inner.train(was_training)
        return out


def with_frontend(encoder: UtteranceEncoder, frontend: FrontEnd | str) -> UtteranceEncoder:
    """``encoder`` behind ``frontend``; an encoder already wrapped gets the new front end instead."""
    inner = encoder.inner if isinstance(encoder, SpeechEncoder) else encoder
    frontend = FrontEnd.parse(frontend)
    return inner if frontend.detector == "none" else SpeechEncoder(inner, frontend)
