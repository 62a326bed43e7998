"""Measured alternatives kept for the studies in bench/ (docs/representation.md), not used by the app or CLI.

``prosody`` (pitch / energy / rate statistics) and ``alignment`` (CORAL source-target alignment) lost
to the default pipeline in the representation study; they stay importable so the study reruns.
"""
