"""Issue 11's probe as a rerunnable command: label bursts from many clients, kill -9, count what was lost.

Starts ``python app.py`` (login on, fresh data folder, shipped source set), adds a pool of synthetic
clips, then for each round: C clients (each logged in as its own user) label random clips through the
HTTP API for a few seconds, the server is killed with SIGKILL in the middle of the burst, restarted,
and every label the server had acknowledged is looked up in a bundle export. Then predict latency
alone and during a bulk add of N clips (bulk embedding yields the model thread between batches).

    python bench/trust_probe.py --clients 20 --kills 3 --burst 20 --bulk 300

Prints one JSON object: acknowledged labels, labels lost, kills, predict latency medians.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf

from serdemo.app.local_server import free_port, wait_for_http

ROOT = Path(__file__).resolve().parents[1]

EXAMPLE = ROOT / "assets" / "examples" / "en_angry_kids.flac"
EMOTIONS = ["anger", "fear", "happiness", "neutral", "sadness"]
SR = 16_000


def start(data: Path, port: int, users: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "SERDEMO_AUTH": ",".join(f"{u}:{u}-pw" for u in users), "OMP_NUM_THREADS": "1"}
    with log.open("a") as handle:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), "--port", str(port), "--data-dir", str(data)],
            cwd=ROOT,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
        )
    wait_for_http(f"http://127.0.0.1:{port}/", 300, process, log)
    return process


def client(url: str, user: str | None = None):
    from gradio_client import Client

    c = Client(url, verbose=False)
    if user:
        c.predict(user, f"{user}-pw", api_name="/login")
    return c


def wait_ready(url: str) -> None:
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    c = client(url)
    while True:
        try:
            c.predict(handle_file(str(EXAMPLE)), "en", api_name="/predict")
            return
        except AppError as error:
            if "starting" not in str(error):
                raise
            time.sleep(1)


def timed_predict(url: str, path: Path) -> float:
    from gradio_client import handle_file

    c = client(url)
    t0 = time.perf_counter()
    c.predict(handle_file(str(path)), "it", api_name="/predict")
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--burst", type=float, default=20.0, help="seconds of labeling before each kill")
    parser.add_argument("--pool", type=int, default=40)
    parser.add_argument("--bulk", type=int, default=300, help="clips of the bulk add predict competes with")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="serdemo-trust-"))
    data, log, port = tmp / "data", tmp / "app.log", free_port()
    url = f"http://127.0.0.1:{port}/"
    users = [f"user{i}" for i in range(args.clients)]
    rng = np.random.default_rng(0)

    def clip(path: Path, seconds: float) -> Path:
        t = np.arange(int(seconds * SR)) / SR
        wave = 0.3 * np.sin(2 * np.pi * rng.uniform(150, 900) * t) + 0.01 * rng.standard_normal(len(t))
        sf.write(path, wave.astype(np.float32), SR)
        return path

    process = start(data, port, users, log)
    wait_ready(url)
    pool_zip = tmp / "pool.zip"
    with zipfile.ZipFile(pool_zip, "w") as archive:
        for i in range(args.pool):
            archive.write(clip(tmp / f"p{i}.wav", 1.0), f"p{i}.wav")
    from gradio_client import handle_file

    client(url, users[0]).predict([handle_file(str(pool_zip))], "it", api_name="/bulk_add")

    acknowledged: dict[str, int] = {u: 0 for u in users}
    lock = threading.Lock()
    for kill in range(args.kills):
        stop = threading.Event()

        def labeler(user: str, seed: int, stop: threading.Event = stop) -> None:
            local = random.Random(seed)
            try:
                c = client(url, user)
            except Exception:  # the server went down before this client logged in
                return
            while not stop.is_set():
                try:
                    c.predict(local.randint(1, args.pool), local.choice(EMOTIONS), user, api_name="/label")
                except Exception:  # killed mid-request: not acknowledged, not counted
                    return
                with lock:
                    acknowledged[user] += 1

        threads = [threading.Thread(target=labeler, args=(u, kill * 1000 + i)) for i, u in enumerate(users)]
        for t in threads:
            t.start()
        time.sleep(args.burst)
        os.kill(process.pid, signal.SIGKILL)  # in the middle of the burst
        process.wait()
        stop.set()
        for t in threads:
            t.join(timeout=60)
        process = start(data, port, users, log)
        wait_ready(url)

    exported = Path(client(url, users[0]).predict("jsonl", api_name="/export"))
    stored: dict[str, int] = {u: 0 for u in users}
    for line in exported.read_text().splitlines():
        record = json.loads(line)
        if record["label_uid"] and record["kind"] == "human" and record["annotator"] in stored:
            stored[record["annotator"]] += 1
    lost = sum(max(0, acknowledged[u] - stored[u]) for u in users)

    # predict latency alone, then while a bulk add embeds args.bulk clips
    probes = [clip(tmp / f"q{i}.wav", 1.5) for i in range(6)]
    alone = [timed_predict(url, p) for p in probes[:3]]
    bulk_zip = tmp / "bulk.zip"
    with zipfile.ZipFile(bulk_zip, "w") as archive:
        for i in range(args.bulk):
            archive.write(clip(tmp / f"b{i}.wav", 2.0), f"b{i}.wav")
    bulk_done = threading.Event()
    bulk_seconds: list[float] = []

    def bulk() -> None:
        t0 = time.perf_counter()
        client(url, users[0]).predict([handle_file(str(bulk_zip))], "it", api_name="/bulk_add")
        bulk_seconds.append(time.perf_counter() - t0)
        bulk_done.set()

    threading.Thread(target=bulk).start()
    time.sleep(5)
    during = [timed_predict(url, p) for p in probes[3:]]
    still_running = not bulk_done.is_set()
    bulk_done.wait()
    process.terminate()
    process.wait()
    print(
        json.dumps(
            {
                "clients": args.clients,
                "kills": args.kills,
                "burst_s": args.burst,
                "labels_acknowledged": sum(acknowledged.values()),
                "labels_stored": sum(stored.values()),
                "labels_lost": lost,
                "predict_alone_median_s": round(statistics.median(alone), 2),
                "predict_during_bulk_median_s": round(statistics.median(during), 2),
                "bulk_clips": args.bulk,
                "bulk_s": round(bulk_seconds[0], 1),
                "bulk_still_running_during_predicts": still_running,
                "log": str(log),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
