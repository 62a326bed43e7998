"""Experiments in the paper's protocol: the protocol (corpora, roles, seeds), the runner, the results file.

``from serdemo.experiment import ExperimentRunner, ExperimentSpec, CorpusRef`` is all a caller needs;
see :mod:`serdemo.experiment.protocol` for what one run compares.
"""

from serdemo.corpora import CorpusError
from serdemo.experiment.protocol import (
    CorpusRef,
    ExperimentError,
    ExperimentSpec,
    check_encoder_name,
    default_corpora_dir,
    stratified_sample,
)
from serdemo.experiment.results import check_output_path, machine_info, write_json_atomic
from serdemo.experiment.runner import ExperimentRunner

__all__ = [
    "CorpusError",
    "CorpusRef",
    "ExperimentError",
    "ExperimentRunner",
    "ExperimentSpec",
    "check_encoder_name",
    "check_output_path",
    "default_corpora_dir",
    "machine_info",
    "stratified_sample",
    "write_json_atomic",
]
