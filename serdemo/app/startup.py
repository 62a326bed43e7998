"""Start-up of the app: encoder, source set, target pool and a model to serve, in a background thread."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from serdemo.app import first_model
from serdemo.app.explore import warm_up_umap
from serdemo.app.rounds import train_and_register
from serdemo.app.source_set import SourceSet, balanced, load_source_corpora
from serdemo.app.workspace import Workspace
from serdemo.audio import AudioError
from serdemo.config import AdaptConfig, Policy
from serdemo.corpora import load_corpus
from serdemo.encoders import build_encoder
from serdemo.encoders.local import load_local_encoder
from serdemo.learn import load_model
from serdemo.learn.clips import is_copy
from serdemo.speech import with_frontend
from serdemo.store.bundle import clean_work


def start_safely(ws: Workspace) -> None:
    """Start up; a failure is shown in the status line and the app keeps serving the page."""
    try:
        start_up(ws)
    except Exception as error:  # shown in the status line: the app keeps serving the page
        ws.error = f"{type(error).__name__}: {error}"
        ws.log(f"start-up failed: {ws.error}")
        ws.ready_event.set()


def start_up(ws: Workspace) -> None:
    """Load the encoder, embed the corpora and make sure a model exists (the steps below)."""
    t0 = time.perf_counter()
    # 0) unpacked uploads a killed process left behind
    # (only this app unpacks there, and nothing runs yet: everything left is from a killed run)
    if removed := clean_work(ws.config.data_dir / "tmp", older_than_s=0):
        ws.log(f"removed {removed} unpacked uploads left by an earlier run")
    # 1) the encoder (whisper-base: ~20 s to read and check its weights)
    if ws.encoder is None:
        ws.say(f"loading encoder {ws.config.encoder}")
        ws.encoder = (
            load_local_encoder(ws.config.encoder, ws.config.encoder_source)
            if ws.config.encoder_source is not None
            else build_encoder(ws.config.encoder)
        )
    # every embedding (source, pool, predictions, timeline windows) goes through one speech front end
    ws.encoder = with_frontend(ws.encoder, ws.frontend)
    # 2) the labeled source set, embedded through the cache (slow only the first time)
    if ws.config.source_corpora:
        ws.source = load_source_corpora(
            ws.config.source_corpora,
            ws.config.corpus_limit,
            ws.config.seed,
            ws.embed_paths,
            ws.say,
            ws.log,
            add_copies=lambda clips, paths: ws.with_copies(clips, paths, ws.augment_copies),
        )
    elif ws.config.shipped_source_set.is_file():
        ws.say(f"reading the shipped source set {ws.config.shipped_source_set}")
        ws.source = SourceSet.load(ws.config.shipped_source_set, ws.encoder.identity)
        # vectors only: copies need the audio, so they come with a rebuilt set
        if ws.augment_copies and not any(is_copy(i) for i in ws.source.train.ids):
            ws.log(
                "the shipped source set has no augmented training copies (AdaptConfig.augment_copies): "
                "rebuild it with scripts/build_source_set.py to train the first model on them"
            )
    # 3) the target pool: corpus clips enter the store unlabeled; their labels stay out of training
    for name, root in ws.config.target_corpora:
        _seed_target(ws, name, root)
    ws.embed_pool(ws.store.clips())
    # 4) a model to serve
    _ensure_model(ws)
    ws.say("ready")
    ws.log(f"ready after {time.perf_counter() - t0:.1f} s")
    ws.ready_event.set()
    if ws.config.warm_up_umap:
        threading.Thread(target=warm_up_umap, name="serdemo-umap-warm-up", daemon=True).start()


def _seed_target(ws: Workspace, name: str, root: Path) -> None:
    ws.say(f"reading target corpus {name} at {root}")
    utterances = balanced(load_corpus(name, root), ws.config.corpus_limit, ws.config.seed)
    for i, utterance in enumerate(utterances):
        if i % 25 == 0:
            ws.say(f"adding {name} clips to the target pool", i, len(utterances))
        try:
            clip = ws.store.add_clip(
                utterance.path,
                language=utterance.language,
                source=f"corpus:{name}",
                original_name=utterance.path.name,
                speaker=utterance.speaker,
            )
        except AudioError as error:  # one unusable corpus file is reported, not fatal
            ws.log(f"target corpus {name}: skipped {error}")
            continue
        if utterance.emotion is not None:
            with ws.lock:
                ws.corpus_labels[clip.id] = utterance.emotion


def _ensure_model(ws: Workspace) -> None:
    active = ws.store.active_version()
    if active is not None:
        ws.say(f"loading model {active.id}")
        if _load_or_fall_back(ws, active.id):
            return
    default = ws.config.default_model_dir
    if (default / "model.safetensors").is_file():
        ws.say(f"registering the shipped model {default}")
        result = load_model(default)
        ws.store.add_model_version(
            result.config.to_dict(), {"origin": "shipped default model"}, weights_path=default
        )
        return
    if ws.source is None:
        ws.no_model_reason = (
            "No model yet: restart with `--source-corpus NAME=PATH` "
            "(e.g. `--source-corpus ravdess=/data/ravdess`) to train one, "
            "or ship a saved model in assets/default_model/."
        )
        ws.log(ws.no_model_reason)
        return
    config = AdaptConfig(
        policy=Policy.NONE.value,
        epochs=ws.config.first_epochs,
        encoder=ws.config.encoder,
        seed=ws.config.seed,
        frontend=str(ws.frontend),
    )
    # without a target pool the first model and its scores depend on the source set and settings alone:
    # a fresh data folder reuses the one an earlier start trained (serdemo.app.first_model)
    key = first_model.first_model_key(ws.source, config) if not ws.store.clips() else None
    if key is not None:
        found = first_model.register_cached(ws.cache.root, key, config, ws.config.data_dir, ws.store, ws.log)
        if found is not None:
            version, result = found
            with ws.lock:
                ws.models[version.id] = result
            ws.log(f"model {version.id}: the first model, from the cache (key {key[:12]})")
            return
    ws.say(f"training the first model (frozen encoder, {ws.source.language} source only)")
    train_and_register(ws, config, language=None, progress=None)
    if key is not None and (version := ws.store.active_version()) is not None:
        first_model.remember(ws.cache.root, key, version, ws.log)


def _load_or_fall_back(ws: Workspace, active_id: str) -> bool:
    """Load the active model; if its files are damaged, activate the newest version that loads.

    A crash or a full disk can leave a truncated ``model.safetensors``; start-up must still serve.
    """
    versions = list(reversed(ws.store.model_versions()))
    candidates = [v for v in versions if v.id == active_id] + [v for v in versions if v.id != active_id]
    for version in candidates:
        try:
            ws.model(version.id)
        except Exception as error:  # safetensors, json and OS errors all mean "cannot serve this"
            ws.log(f"model {version.id} cannot be loaded ({type(error).__name__}: {error}); skipped")
            continue
        if version.id != active_id:
            ws.store.activate(version.id)
            ws.log(f"model {active_id} is damaged: fell back to {version.id}, the newest that loads")
        return True
    return False
