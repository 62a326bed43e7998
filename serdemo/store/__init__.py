"""The annotation store: records (clips, labels, versions), the database, CSV/JSONL exchange, bundles."""

from serdemo.store.db import AnnotationStore
from serdemo.store.records import (
    EXPORT_FIELDS,
    MAX_AUDIO_BYTES,
    Clip,
    ClipSource,
    ImportReport,
    Label,
    LabelKind,
    ModelVersion,
)

__all__ = [
    "EXPORT_FIELDS",
    "MAX_AUDIO_BYTES",
    "AnnotationStore",
    "Clip",
    "ClipSource",
    "ImportReport",
    "Label",
    "LabelKind",
    "ModelVersion",
]
