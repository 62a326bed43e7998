"""Every endpoint of README's API table, called from gradio_client with only the inputs README lists.

The app is built before its target pool exists (as on a fresh data folder), so the language `it` and
every version after the first are created after the page was built: the API must take them.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import soundfile as sf
from test_service import PITCH, SR, make_service, tone

from serdemo.app.local_server import served
from serdemo.labels import EMOTIONS

pytestmark = pytest.mark.slow


@pytest.fixture
def api(tmp_path):
    from gradio_client import Client

    from serdemo.app.lean_api import add_probability_route

    service = make_service(tmp_path, target=False)  # a source set, no target pool: no language known yet
    assert service.languages() == []

    def probability_route(app) -> None:
        add_probability_route(app.server_app, service, max_bytes=1 << 20)  # as app.py does

    with served(service, probability_route) as url:
        yield service, Client(url, verbose=False), tmp_path


def api_url(api) -> str:
    return api[1].src if api[1].src.endswith("/") else api[1].src + "/"


def clip(folder: Path, emotion: str, i: int) -> Path:
    path = folder / f"{emotion}-{i}.wav"
    sf.write(path, tone(PITCH[emotion] * 1.2 * (1 + 0.01 * i), 1.0 + 0.1 * (i % 3), seed=500 + i), SR)
    return path


def api_description_declares_store_pickers_as_strings(api) -> None:
    _, client, _ = api
    info = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    for endpoint, parameter in (("/activate", 0), ("/adapt", 0), ("/project", 0)):
        declared = info[endpoint]["parameters"][parameter]["type"]
        assert declared == {"type": "string"}, (endpoint, declared)  # not an enum of build-time choices


def bulk_add(api) -> None:
    from gradio_client import handle_file

    service, client, tmp = api
    folder = tmp / "clips"
    folder.mkdir()
    loose = [clip(folder, e, 0) for e in EMOTIONS]
    archive = tmp / "more.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for i in range(1, 4):
            for emotion in EMOTIONS:
                handle.write(clip(folder, emotion, i), f"more/{emotion}-{i}.wav")
    message = client.predict([handle_file(str(p)) for p in [*loose, archive]], "it", api_name="/bulk_add")
    assert "Added 20 clips to the `it` pool" in message
    assert service.languages() == ["it"]


def label(api) -> None:
    service, client, _ = api
    clips = service.store.clips("it")
    for c in clips[:12]:
        emotion = c.original_name.split("-")[0]
        result = client.predict(c.id, emotion, "api-test", api_name="/label")
        assert result["language"] == "it" and result["emotion"] == emotion
    assert sum(service.store.label_counts("it").values()) == 12


def adapt_on_a_language_made_after_the_page(api) -> None:
    service, client, _ = api
    before = len(service.store.model_versions())
    report, *_ = client.predict("it", "hard", 0.5, 4, 2, True, "auto", api_name="/adapt")
    assert "is active" in report and "cross-validation" in report and "95% CI" in report
    assert "previous version" in report and "Too few clips to judge" in report
    assert len(service.store.model_versions()) == before + 1


def versions(api) -> None:
    service, client, _ = api
    table, _picker = client.predict(api_name="/versions")
    listed = [row[0] for row in table["data"]]
    assert listed == service.version_ids() and len(listed) == 2


def activate_a_version_made_after_the_page(api) -> None:
    service, client, _ = api
    newest, first = service.version_ids()
    message, _table, _picker = client.predict(first, api_name="/activate")
    assert f"{first} is active" in message and service.store.active_version().id == first
    message, _table, _picker = client.predict(newest, api_name="/activate")
    assert service.store.active_version().id == newest
    with pytest.raises(Exception, match="no model version"):
        client.predict("v9-nope", api_name="/activate")


def project(api) -> None:
    service, client, _ = api
    message, before, after, _clips = client.predict("it", "pca", 2, "emotion", api_name="/project")
    assert "20 target" in message and before is not None and after is not None


def predict(api) -> None:
    from gradio_client import handle_file

    _, client, tmp = api
    probs, summary, _timeline, details = client.predict(
        handle_file(str(clip(tmp, "sadness", 9))), api_name="/predict"
    )
    assert details["top"] == probs["label"] and details["model_version"] in summary
    _, _, _, with_language = client.predict(
        handle_file(str(clip(tmp, "anger", 9))), "it", api_name="/predict"
    )
    assert with_language["language"] == "it"


def test_plain_http_predict_probs_returns_only_the_probabilities(api):
    import httpx

    service, _, tmp = api
    url = f"{api_url(api)}api/predict_probs"
    path = clip(tmp, "happiness", 9)
    answer = httpx.post(url, content=path.read_bytes(), timeout=60)
    assert answer.status_code == 200
    assert answer.json() == service.predict(path).probs  # the same answer as the full prediction
    with_language = httpx.post(url, params={"language": "it"}, content=path.read_bytes(), timeout=60)
    assert with_language.json() == service.predict(path, "it").probs
    empty = httpx.post(url, content=b"", timeout=60)
    assert empty.status_code == 400 and "post the audio" in empty.json()["error"]
    broken = httpx.post(url, content=b"not audio at all" * 100, timeout=60)
    assert broken.status_code == 400 and str(tmp) not in broken.json()["error"]
    too_big = httpx.post(url, content=b"0" * (2 << 20), timeout=60)
    assert too_big.status_code == 413


def add_to_pool(api) -> None:
    from gradio_client import handle_file

    service, client, tmp = api
    message = client.predict(handle_file(str(clip(tmp, "fear", 8))), "pt", api_name="/add_to_pool")
    assert "Added clip" in message and "pt" in service.languages()


def export_and_import(api) -> None:
    from gradio_client import handle_file

    _, client, _ = api
    exported = client.predict("jsonl", api_name="/export")
    rows = [json.loads(line) for line in Path(exported).read_text().splitlines()]
    assert sum(r["annotator"] == "api-test" for r in rows) == 12
    message = client.predict(handle_file(exported), api_name="/import")
    assert message.startswith("Imported 0 new clips and 0 new labels")  # all of it is here already


def test_every_endpoint_as_a_client_meets_them(api):
    """One client, one app: each step builds on the one before (labels need the pool, adapt the labels)."""
    api_description_declares_store_pickers_as_strings(api)
    bulk_add(api)
    label(api)
    adapt_on_a_language_made_after_the_page(api)
    versions(api)
    activate_a_version_made_after_the_page(api)
    project(api)
    predict(api)
    add_to_pool(api)
    export_and_import(api)
