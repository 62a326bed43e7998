"""Every default is declared once (AdaptConfig or its layer's config); a layer re-declaring one fails here.

The scan reads the source of serdemo/ and app.py: a parameter, dataclass field or command-line option
named like an AdaptConfig field must take its default from AdaptConfig (``tau: float = AdaptConfig.tau``),
not repeat the value (``tau: float = 0.5``), which silently drifts when the config's default changes.
"""

import ast
import dataclasses
from pathlib import Path

import pytest

from serdemo.config import LABELED_TARGET_CLIPS, AdaptConfig, Policy
from serdemo.labels import EMOTION_COLORS

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "serdemo").rglob("*.py")) + [ROOT / "app.py"]
# seed / device / threads: every seeded helper starts from 0 on the CPU by its own choice, not the config's
NAMES = {f.name for f in dataclasses.fields(AdaptConfig)} - {"seed", "seeds", "device", "threads"} | {
    "labeled"
}
# Same names, other quantities: clips per encoder forward pass (not the training mini-batch), the
# BYOL-A encoder's own dropout, the crop policy of an embedding (not the pseudo-label policy).
OTHER_MEANING = {
    ("serdemo/cache.py", "batch_size"),
    ("serdemo/speech.py", "batch_size"),
    ("serdemo/scale/workers.py", "batch_size"),
    ("serdemo/scale/jobs.py", "batch_size"),
    ("serdemo/scale/cli.py", "batch_size"),
    ("serdemo/encoders/base.py", "batch_size"),
    ("serdemo/encoders/byols.py", "dropout"),
}


def literal_defaults(path: Path) -> list[tuple[str, int]]:
    """(name, line) of every literal default given to something named like a config field."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            args = node.args.args + node.args.kwonlyargs
            pad = [None] * (len(node.args.args) - len(node.args.defaults))
            for arg, default in zip(args, pad + node.args.defaults + node.args.kw_defaults, strict=True):
                if default is not None and arg.arg in NAMES and _literal(default):
                    found.append((arg.arg, node.lineno))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if node.target.id in NAMES and node.value is not None and _literal(node.value):
                found.append((node.target.id, node.lineno))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument" and node.args:
            flag = node.args[0]
            name = str(flag.value).lstrip("-").replace("-", "_") if isinstance(flag, ast.Constant) else ""
            for keyword in node.keywords:
                if keyword.arg == "default" and name in NAMES and _literal(keyword.value):
                    found.append((name, node.lineno))
    return found


def _literal(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is not None


def test_no_layer_redeclares_a_config_default():
    redeclared = [
        f"{path.relative_to(ROOT)}:{line} {name}"
        for path in SOURCES
        if path != ROOT / "serdemo" / "config.py"
        for name, line in literal_defaults(path)
        if (path.relative_to(ROOT).as_posix(), name) not in OTHER_MEANING
    ]
    assert redeclared == [], "read these defaults from AdaptConfig / LABELED_TARGET_CLIPS instead"


def test_the_scan_finds_a_redeclared_default(tmp_path):
    sample = tmp_path / "layer.py"
    sample.write_text("def adapt(tau: float = 0.5, epochs=AdaptConfig.epochs): ...\n")
    assert literal_defaults(sample) == [("tau", 1)]


def test_the_policy_list_and_the_emotion_colours_are_declared_once():
    policies = {p.value for p in Policy}
    colours = set(EMOTION_COLORS.values())
    for path in SOURCES:
        if path.name in ("config.py", "labels.py") and path.parent.name == "serdemo":
            continue
        text = path.read_text()
        assert not [c for c in colours if c.lower() in text.lower()], f"{path}: emotion colours re-declared"
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.List | ast.Tuple | ast.Set):
                values = {e.value for e in node.elts if isinstance(e, ast.Constant)}
                assert not policies <= values, f"{path}:{node.lineno}: the policy list, use config.Policy"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("serdemo.app.config:ServiceConfig.encoder", AdaptConfig.encoder),
        ("serdemo.app.config:ServiceConfig.first_epochs", AdaptConfig.epochs),
        ("serdemo.app.views:AdaptRequest.tau", AdaptConfig.tau),
        ("serdemo.app.views:AdaptRequest.policy", AdaptConfig.policy),
        ("serdemo.experiment.protocol:ExperimentSpec.labeled", LABELED_TARGET_CLIPS),
    ],
)
def test_layers_read_the_defaults(value, expected):
    import importlib

    module, attribute = value.split(":")
    owner, name = attribute.split(".")
    assert getattr(getattr(importlib.import_module(module), owner), name) == expected
