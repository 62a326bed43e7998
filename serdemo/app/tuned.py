"""Fine-tuned model versions in the app: whether rounds are offered, their encoder, vectors and audio.

A frozen version is a head over the vectors of the app's one encoder, cached once per clip. A fine-tuned
version carries encoder weights of its own (saved beside its head, so activating an older version brings
the older encoder back), and the base encoder's cached vectors are stale for it. So every vector a
fine-tuned version reads (pool clips for the labeling queue and the Explore maps, predictions, held-out
source clips) comes from its own encoder, behind the app's speech front end, under an encoder identity
of its own (:class:`TunedEncoder`): the embedding cache never mixes them with the base encoder's.

Serving splits a fine-tuned model into its head (used on vectors, like a frozen version's) and its
encoder (:func:`split`), so every room of the app treats both kinds alike once it asks the workspace
for the version's encoder.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from serdemo.app.config import EMBED_BATCH, ServiceError
from serdemo.audio import load_audio
from serdemo.config import Mode
from serdemo.encoders.base import UtteranceEncoder, weights_hash
from serdemo.learn import AdaptResult, ClipSet, build_clipset
from serdemo.learn.clips import is_copy
from serdemo.learn.finetune import FinetuneAvailability, finetune_availability
from serdemo.speech import FrontEnd, SpeechEncoder, with_frontend
from serdemo.store import Clip

if TYPE_CHECKING:
    from serdemo.app.workspace import Workspace


class TunedEncoder(UtteranceEncoder):
    """A fine-tuned copy of an encoder with an identity of its own: base identity + hash of its weights.

    Its forward pass is the wrapped encoder's; the identity keys the embedding cache, so vectors of two
    fine-tuned versions, or of a fine-tuned version and the base encoder, are never confused.
    """

    def __init__(self, inner: UtteranceEncoder) -> None:
        super().__init__()
        self.inner = inner
        self.name, self.num_layers, self.hidden_size = inner.name, inner.num_layers, inner.hidden_size
        self._weights = weights_hash(inner)

    @property
    def identity(self) -> str:
        """The base encoder's identity, marked as fine-tuned to these weights."""
        return f"{self.inner.identity}+finetuned-{self._weights}"

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The fine-tuned encoder's frame features."""
        return self.inner(waveforms, lengths)


def base_encoder(encoder: UtteranceEncoder) -> UtteranceEncoder:
    """The encoder behind the app's speech front end (what fine-tuning trains a copy of)."""
    return encoder.inner if isinstance(encoder, SpeechEncoder) else encoder


def fresh_copy(ws: Workspace) -> UtteranceEncoder:
    """A trainable copy of the app's base encoder: each fine-tune round starts from the pretrained weights."""
    if ws.encoder is None:
        raise ServiceError("still starting: the encoder is not loaded yet; try again in a moment")
    # a deep copy keeps which weights train as the encoder declares it (Whisper's positions stay fixed,
    # as in the CLI's fine-tuning); freeze_blocks then fixes lower blocks of this copy only
    return copy.deepcopy(base_encoder(ws.encoder))


def split(result: AdaptResult, frontend: FrontEnd) -> tuple[AdaptResult, UtteranceEncoder]:
    """A fine-tuned model as the app serves it: its head (on vectors) and its encoder (front end applied).

    The head reads raw pooled vectors (fine-tuning has no feature normaliser), so the head-only result is
    used like a frozen version's on the vectors of the returned encoder.
    """
    head = result.head
    head_only = dataclasses.replace(
        result, config=dataclasses.replace(result.config, mode=Mode.FROZEN.value), model=head
    )
    encoder = with_frontend(TunedEncoder(result.model.encoder), frontend)
    encoder.eval()
    return head_only, encoder


def is_finetuned(config: dict) -> bool:
    """Whether a model version's saved config is a fine-tuning run."""
    return config.get("mode") == Mode.FINETUNE.value


def offer(ws: Workspace) -> FinetuneAvailability:
    """Whether this app offers fine-tune rounds now, on which device, and why not when it does not.

    The device rule is :func:`serdemo.learn.finetune.finetune_availability` (a GPU, or the CPU opt-in);
    the app adds what fine-tuning needs besides: source audio (the shipped source set holds vectors only)
    and an encoder with trainable weights (not the int8 one).
    """
    device = finetune_availability(ws.config.allow_cpu_finetune)
    if not device.offered:
        return device
    shipped_only = not ws.config.source_corpora
    if shipped_only or (ws.source is not None and not ws.source.paths):
        return FinetuneAvailability(
            False,
            device.device,
            "Off: fine-tuning trains on the source clips' audio, and this app has only the shipped source "
            "vectors: start with --source-corpus NAME=PATH.",
        )
    if ws.encoder is not None and not any(p.requires_grad for p in base_encoder(ws.encoder).parameters()):
        return FinetuneAvailability(
            False,
            device.device,
            f"Off: encoder {ws.encoder.identity} has no trainable weights (int8): start with --encoder "
            "whisper-base to fine-tune.",
        )
    return device


def speech_waves(ws: Workspace, paths: Sequence[Path], what: str) -> list[np.ndarray]:
    """Audio of each file cut to its speech by the app's front end: what fine-tuning crops from.

    Frozen vectors are pooled over the speech the front end finds; training crops of the silence around
    it would teach the encoder that silence carries the clip's emotion. A batch per model-thread turn,
    stepping aside for waiting predicts (the detector is shared with them).
    """
    waves = []
    for start in range(0, len(paths), EMBED_BATCH):
        while ws.interactive_waiting:
            time.sleep(0.01)
        part = [load_audio(p) for p in paths[start : start + EMBED_BATCH]]
        if isinstance(ws.encoder, SpeechEncoder):
            part = ws.model_thread.run(lambda waves: [ws.encoder.prepare(w)[0] for w in waves], part)
        waves += part
        ws.round_status = f"reading audio of {what} {min(start + EMBED_BATCH, len(paths))}/{len(paths)}"
    return waves


def source_audio(ws: Workspace, part: ClipSet, what: str) -> ClipSet:
    """A source part as waveforms (its augmented copies left out: random crops are fine-tuning's own)."""
    paths = ws.source.paths if ws.source is not None else {}
    rows = [i for i, clip_id in enumerate(part.ids) if not is_copy(clip_id)]
    missing = [part.ids[i] for i in rows if part.ids[i] not in paths]
    if missing:
        raise ServiceError(
            f"no audio for {len(missing)} source clips (e.g. {missing[0]}): fine-tuning needs the source "
            "corpus; start with --source-corpus NAME=PATH"
        )
    kept = part.subset(rows)
    return build_clipset(
        ids=kept.ids,
        languages=kept.languages.tolist(),
        speakers=kept.speakers.tolist(),
        labels=kept.labels,
        waveforms=speech_waves(ws, [paths[i] for i in kept.ids], what),
    )


def pool_audio(ws: Workspace, clips: Sequence[Clip], labels: Sequence[int] | None = None) -> ClipSet:
    """Pool clips as waveforms (cut to their speech), with ``labels`` or unlabeled."""
    return build_clipset(
        ids=[c.id for c in clips],
        languages=[c.language for c in clips],
        speakers=[c.speaker for c in clips],
        labels=labels,
        waveforms=speech_waves(ws, [c.path for c in clips], "target pool clips") if clips else [],
    )


def source_vectors(ws: Workspace, part: ClipSet, encoder: UtteranceEncoder | None) -> ClipSet | None:
    """A source part with the vectors of ``encoder`` (None: the base encoder's, as stored).

    None when the source audio is not here (the shipped source set): a fine-tuned encoder cannot embed it.
    """
    if encoder is None or encoder is ws.encoder:
        return part
    paths = ws.source.paths if ws.source is not None else {}
    if not all(i in paths for i in part.ids):
        return None
    features = ws.embed_paths([paths[i] for i in part.ids], "source clips (fine-tuned encoder)", encoder)
    return dataclasses.replace(part.subset(np.arange(len(part))), features=features)
