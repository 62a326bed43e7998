"""The model registry of the annotation store: trained versions, which one is active, their pseudo-labels."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from serdemo.store.records import LabelKind, ModelVersion, to_json, utc_now, version_from_row


class ModelRegistry:
    """Model versions of an :class:`~serdemo.store.db.AnnotationStore`; mixed into it (its connections)."""

    def add_model_version(
        self,
        config: dict[str, Any],
        metrics: dict[str, Any] | None = None,
        weights_path: Path | str | None = None,
        parent: str | None = None,
        activate: bool = True,
        machine_labels: Sequence[tuple[int, str, float | None]] = (),
    ) -> ModelVersion:
        """Record a trained model; it becomes the active one if ``activate`` or if it is the first.

        ``machine_labels`` (``(clip_id, emotion, confidence)``, the round's pseudo-labels) are stored
        in the same transaction, annotated by the new version: a crash leaves both or neither.

        Raises:
            ValueError: unknown parent, or config/metrics that are not JSON-serializable.

        """
        config_json = to_json(config, "config")
        metrics_json = to_json(metrics or {}, "metrics")
        with self._write() as conn:
            if (
                parent is not None
                and not conn.execute("SELECT 1 FROM model_versions WHERE id = ?", (parent,)).fetchone()
            ):
                raise ValueError(f"unknown parent model version {parent!r}: see model_versions()")
            seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM model_versions").fetchone()[0]
            version_id = f"v{seq}-{uuid.uuid4().hex[:6]}"
            first = seq == 1
            if activate and not first:
                conn.execute("UPDATE model_versions SET active = 0 WHERE active = 1")
            conn.execute(
                "INSERT INTO model_versions (id, seq, created_at, parent, config, metrics, weights_path, "
                "active) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    version_id,
                    seq,
                    utc_now(),
                    parent,
                    config_json,
                    metrics_json,
                    None if weights_path is None else str(weights_path),
                    int(activate or first),
                ),
            )
            if machine_labels:
                self._insert_labels(conn, machine_labels, version_id, LabelKind.MACHINE.value, version_id)
            row = conn.execute("SELECT * FROM model_versions WHERE id = ?", (version_id,)).fetchone()
        return version_from_row(row)

    def update_model_metrics(self, version_id: str, metrics: dict[str, Any]) -> ModelVersion:
        """Replace a version's metrics (a round records its judgement after the version is active).

        Raises:
            ValueError: unknown version, or metrics that are not JSON-serializable.

        """
        metrics_json = to_json(metrics, "metrics")
        with self._write() as conn:
            if not conn.execute("SELECT 1 FROM model_versions WHERE id = ?", (version_id,)).fetchone():
                raise ValueError(f"unknown model version {version_id!r}: see model_versions()")
            conn.execute("UPDATE model_versions SET metrics = ? WHERE id = ?", (metrics_json, version_id))
            row = conn.execute("SELECT * FROM model_versions WHERE id = ?", (version_id,)).fetchone()
        return version_from_row(row)

    def model_versions(self) -> list[ModelVersion]:
        """All model versions, oldest first."""
        with self._connect() as conn:
            return [
                version_from_row(row) for row in conn.execute("SELECT * FROM model_versions ORDER BY seq")
            ]

    def active_version(self) -> ModelVersion | None:
        """Return the version the app serves, or None before any was added."""
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM model_versions WHERE active = 1").fetchone()
        return version_from_row(row) if row else None

    def activate(self, version_id: str) -> ModelVersion:
        """Make ``version_id`` the active version (rollback or roll forward); ValueError if unknown."""
        with self._write() as conn:
            if not conn.execute("SELECT 1 FROM model_versions WHERE id = ?", (version_id,)).fetchone():
                raise ValueError(f"unknown model version {version_id!r}: see model_versions()")
            conn.execute("UPDATE model_versions SET active = 0 WHERE active = 1")
            conn.execute("UPDATE model_versions SET active = 1 WHERE id = ?", (version_id,))
            row = conn.execute("SELECT * FROM model_versions WHERE id = ?", (version_id,)).fetchone()
        return version_from_row(row)
