"""The app: a thin service facade over rooms with one job each, and the Gradio UI (``serdemo.app.ui``).

Rooms: ``startup`` (encoder, source set, pool, first model), ``predict``, ``ingest`` (clips into a
pool), ``labeling`` (the queue), ``rounds`` (adaptation and versions), ``explore`` (projections),
``transfer`` (export / import); they share a ``workspace``. ``tuned`` holds what fine-tuned versions
need (whether rounds are offered, their own encoder and vectors). ``views`` holds what the UI shows,
``source_set`` the embedded labeled source set, ``config`` the app's settings and errors.
"""

from serdemo.app.config import ASSETS, BusyError, RoundCancelledError, ServiceConfig, ServiceError
from serdemo.app.service import Service
from serdemo.app.views import (
    NO_SPEECH_LABEL,
    AdaptReport,
    AdaptRequest,
    LabelState,
    LabelView,
    Prediction,
    ProjectionView,
    QueueItem,
    Segment,
)

__all__ = [
    "ASSETS",
    "NO_SPEECH_LABEL",
    "AdaptReport",
    "AdaptRequest",
    "BusyError",
    "LabelState",
    "LabelView",
    "Prediction",
    "ProjectionView",
    "QueueItem",
    "RoundCancelledError",
    "Segment",
    "Service",
    "ServiceConfig",
    "ServiceError",
]
