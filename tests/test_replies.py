"""The /v1/health and /v1/check replies as the protocol types them: what a real backend sends
reads back to the same JSON through the type, and the add-on's client hands out the typed reply
with the same values. A reply from a newer backend (keys this version does not know) or an
older one (keys missing) still reads."""

from __future__ import annotations

from pathlib import Path

import pytest
from addon_package import extension_package
from backend_proc import BackendProc

from backend.protocol import CheckReply, ClusterHealth, HealthReply

SETTINGS = {"width": 64, "height": 48, "steps": 1, "segment_frames": 17, "estimator": "mediapipe"}
# The keys, in order, that backends have sent since before the replies were typed: an add-on of
# any version reads them, so the types may add keys but never rename or drop these.
HEALTH_KEYS = [
    "status", "database", "version", "pid", "worker_alive", "worker_error", "model_dir",
    "model_dir_problem", "model_loaded", "device", "queued", "running", "busy", "user", "admin",
    "free_disk_bytes", "unreadable_jobs",
]  # fmt: skip
CHECK_FOUND_KEYS = ["ok", "warnings", "people", "clip_frame", "box", "face_box", "skeleton", "preview_png"]
CHECK_FAILED_KEYS = ["ok", "error", "warnings", "people", "preview_png"]


@pytest.fixture(scope="module")
def backend(tmp_path_factory, backend_python, tiny_model):
    b = BackendProc(backend_python, tmp_path_factory.mktemp("replies") / "data", tiny_model)
    yield b
    b.stop()


def _client_module():
    """The add-on's client, imported inside the extension's package as Blender loads it."""
    return extension_package().wan_animate_blender.core.client


def _check_body(character: Path, clip: Path, **settings) -> dict:
    return {"character_path": str(character), "clip_path": str(clip), "settings": {**SETTINGS, **settings}}


def _client_request(character: Path, clip: Path):
    """A JobRequest of the extension's own protocol, as the add-on's client sends it."""
    protocol = extension_package().backend.protocol
    return protocol.JobRequest.from_json(_check_body(character, clip))


def test_the_health_reply_reads_back_to_what_the_backend_sent(backend):
    sent = backend.get("/v1/health").json()
    assert list(sent) == HEALTH_KEYS
    health = HealthReply.from_json(sent)
    assert health.to_json() == sent
    assert health.ok and health.worker_alive and health.pid == backend.proc.pid
    assert health.cluster is None and "cluster" not in sent  # not in cluster mode

    client = _client_module().BackendClient(backend.url, backend.token)
    typed = client.health()
    assert type(typed).__name__ == "HealthReply" and typed.to_json().keys() == sent.keys()
    assert (typed.status, typed.pid, typed.model_dir) == (health.status, health.pid, health.model_dir)


def test_the_check_replies_read_back_to_what_the_backend_sent(backend, astronaut_png, carphone_clip):
    found = backend.post("/v1/check", json=_check_body(astronaut_png, carphone_clip)).json()
    assert list(found) == CHECK_FOUND_KEYS
    check = CheckReply.from_json(found)
    assert check.to_json() == found
    assert check.ok and check.clip_frame is not None and len(check.box) == 4 and check.preview_png

    # A pick on nobody: the failed check, without the followed person's keys.
    nobody = backend.post(
        "/v1/check", json=_check_body(astronaut_png, carphone_clip, person=[0.02, 0.02])
    ).json()
    assert list(nobody) == CHECK_FAILED_KEYS
    missed = CheckReply.from_json(nobody)
    assert missed.to_json() == nobody
    assert not missed.ok and missed.error and "clip_frame" not in nobody

    # A cast of one row: its reply nests the row's own.
    row = {"person": [0.5, 0.5], "character_path": str(astronaut_png)}
    cast = backend.post(
        "/v1/check",
        json={"clip_path": str(carphone_clip), "settings": {**SETTINGS, "mode": "replace", "cast": [row]}},
    ).json()
    assert list(cast) == [*CHECK_FOUND_KEYS, "cast"] and list(cast["cast"][0]) == CHECK_FOUND_KEYS
    cast_check = CheckReply.from_json(cast)
    assert cast_check.to_json() == cast
    assert cast_check.cast is not None and len(cast_check.cast) == 1
    assert cast_check.cast[0].to_json() == cast["cast"][0]

    client = _client_module().BackendClient(backend.url, backend.token)
    typed = client.check(_client_request(astronaut_png, carphone_clip))
    assert typed is not None and typed.ok and typed.clip_frame == check.clip_frame and typed.box == check.box


def test_a_newer_backends_extra_keys_and_an_older_ones_missing_keys_still_read():
    newer = {"status": "ok", "pid": 7, "worker_alive": True, "gpu_temperature": 61, "cluster": None}
    health = HealthReply.from_json(newer)
    assert health.ok and health.pid == 7 and "gpu_temperature" not in health.to_json()
    older = HealthReply.from_json({"status": "degraded", "version": "0.0.9"})
    assert not older.ok and older.version == "0.0.9" and older.unreadable_jobs == 0
    assert older.cluster is None

    # The cluster part before the head first reached the cluster: no address yet, and none sent.
    starting = {"nodes": [], "gpus": 0, "actors": 0, "idle_actors": 0, "problem": "connecting to the cluster"}
    cl = ClusterHealth.from_json({**starting, "jobs": {"ab": {"window": 1, "windows": 3}}})
    assert cl.address is None and cl.jobs["ab"].windows == 3 and cl.jobs["ab"].ip is None
    assert "address" not in cl.to_json() and cl.to_json()["jobs"] == {"ab": {"window": 1, "windows": 3}}

    check = CheckReply.from_json({"ok": False, "error": "no one", "warnings": [], "shiny": 1})
    assert check.to_json() == {
        "ok": False,
        "error": "no one",
        "warnings": [],
        "people": None,
        "preview_png": None,
    }
    # A null where a list or a count belongs reads as its default, not as a crash later.
    nulls = HealthReply.from_json({"status": "ok", "queued": None, "cluster": {"nodes": None, "jobs": None}})
    assert (
        nulls.queued == 0
        and nulls.cluster is not None
        and nulls.cluster.nodes == []
        and nulls.cluster.jobs == {}
    )
    assert CheckReply.from_json({"ok": True, "warnings": None}).warnings == []
    with pytest.raises(ValueError, match="JSON object"):
        CheckReply.from_json(["not", "a", "reply"])
