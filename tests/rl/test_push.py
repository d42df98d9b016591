"""Sharing a policy: the card's Hub metadata, and ``python -m dllm_viz.rl.push`` against a stub of the
Hub's HTTP API on loopback (no network): create the repo, pre-upload, LFS batch and PUT for the binaries,
one commit with the rest inline. The stub answers the endpoints huggingface_hub's ``create_repo`` and
``upload_folder`` call and keeps what they send, so the test rebuilds the uploaded repo and loads it."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard

from dllm_viz.assets import POLICIES_DIR
from dllm_viz.policy import DiTConfidencePolicy
from dllm_viz.rl.card import base_model_of, card_metadata
from dllm_viz.rl.push import prepare_upload

ROOT = Path(__file__).resolve().parents[2]
LFS_SUFFIXES = (".safetensors", ".png")  # what the Hub stores in LFS (binaries); the rest goes inline


def metadata_errors(readme: str) -> list[str]:
    """The stub's share of the Hub's metadata check: a YAML mapping whose known keys have the right types."""
    import yaml

    if not readme.startswith("---\n"):
        return []
    meta = yaml.safe_load(readme.split("---\n", 2)[1])
    if not isinstance(meta, dict):
        return ["metadata must be a YAML mapping"]
    strings = ("library_name", "license", "pipeline_tag", "base_model")
    errors = [f"{k} must be a string" for k in strings if k in meta and not isinstance(meta[k], str)]
    lists = ("tags", "metrics")
    errors += [
        f"{k} must be a list of strings" for k in lists if k in meta and not all(isinstance(t, str) for t in meta[k])
    ]
    return errors


class StubHub(BaseHTTPRequestHandler):
    """The Hub endpoints an upload touches; state lives on the server object."""

    def _json(self, data: object, status: int = 200) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        hub, path, body = self.server, self.path.split("?")[0], self._body()
        hub.requests.append(("POST", path))
        base = f"http://127.0.0.1:{hub.server_port}"
        if path == "/api/validate-yaml":  # create_commit has the Hub check README.md's metadata first
            errors = metadata_errors(json.loads(body)["content"])
            hub.validated.append(not errors)
            self._json({"errors": [{"message": e} for e in errors]}, 400 if errors else 200)
        elif path == "/api/repos/create":
            hub.repo = json.loads(body)
            self._json({"url": f"{base}/{hub.repo['organization']}/{hub.repo['name']}"})
        elif "/preupload/" in path:
            files = json.loads(body)["files"]
            modes = [{"path": f["path"], "uploadMode": "lfs" if f["path"].endswith(LFS_SUFFIXES) else "regular",
                      "shouldIgnore": False} for f in files]  # fmt: skip
            self._json({"files": modes})
        elif path.endswith(".git/info/lfs/objects/batch"):
            objects = json.loads(body)["objects"]
            actions = [{"oid": o["oid"], "size": o["size"],
                        "actions": {"upload": {"href": f"{base}/lfs-upload/{o['oid']}"}}} for o in objects]  # fmt: skip
            self._json({"transfer": "basic", "objects": actions})
        elif "/commit/" in path:
            lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
            for line in lines[1:]:
                value = line["value"]
                if line["key"] == "file":
                    hub.files[value["path"]] = base64.b64decode(value["content"])
                elif line["key"] == "lfsFile":
                    blob = hub.lfs[value["oid"]]
                    assert hashlib.sha256(blob).hexdigest() == value["oid"]
                    hub.files[value["path"]] = blob
            hub.commit = lines[0]["value"]
            self._json({"commitUrl": f"{base}/{hub.repo_id}/commit/{'1' * 40}", "commitOid": "1" * 40})
        else:
            self._json({"error": f"stub: no POST {path}"}, 404)

    def do_PUT(self) -> None:  # noqa: N802
        oid = self.path.rsplit("/", 1)[-1]
        self.server.requests.append(("PUT", self.path))
        self.server.lfs[oid] = self._body()
        self._json({})

    def do_GET(self) -> None:  # noqa: N802
        self.server.requests.append(("GET", self.path))
        self._json({"error": f"stub: no GET {self.path}"}, 404)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def hub():
    server = ThreadingHTTPServer(("127.0.0.1", 0), StubHub)
    server.requests, server.files, server.lfs, server.repo, server.commit = [], {}, {}, None, None
    server.validated = []
    server.repo_id = "ann/semi-ar-policy"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def push(hub, folder: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m dllm_viz.rl.push`` in a fresh process whose Hub is the stub."""
    env = {
        **os.environ,
        "HF_ENDPOINT": f"http://127.0.0.1:{hub.server_port}",
        "HF_TOKEN": "hf_stub",
        "HF_HUB_OFFLINE": "0",
        "HF_HUB_DISABLE_XET": "1",
        "HF_HOME": str(folder.parent / "hf-home"),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [sys.executable, "-m", "dllm_viz.rl.push", str(folder), hub.repo_id, *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def shipped_policy(tmp_path):
    """A copy of a shipped policy folder (its card from before cards carried metadata, or after)."""
    folder = tmp_path / "semi-ar-alpha1"
    shutil.copytree(POLICIES_DIR / "semi-ar-alpha1", folder)
    return folder


def test_push_uploads_weights_config_curves_and_our_card(hub, shipped_policy, tmp_path):
    result = push(hub, shipped_policy, "--private", "--base-model", "GSAI-ML/LLaDA-8B-Instruct")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(f"/{hub.repo_id}/commit/{'1' * 40}")
    assert (hub.repo["name"], hub.repo.get("organization")) == ("semi-ar-policy", "ann")
    assert hub.repo.get("private") is True or hub.repo.get("visibility") == "private"  # huggingface_hub < 1 / 2.x
    assert sorted(hub.files) == sorted(p.name for p in shipped_policy.iterdir() if p.name != ".gitattributes")
    assert {k for k in hub.lfs} == {
        hashlib.sha256(hub.files[n]).hexdigest() for n in hub.files if n.endswith(LFS_SUFFIXES)
    }
    # the uploaded repo, rebuilt from what the Hub received, is the same policy
    repo = tmp_path / "uploaded"
    repo.mkdir()
    for name, blob in hub.files.items():
        (repo / name).write_bytes(blob)
    ours, theirs = DiTConfidencePolicy.from_pretrained(repo), DiTConfidencePolicy.from_pretrained(shipped_policy)
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), theirs.state_dict().values(), strict=True))
    # our card, with the Hub's metadata block in front of its text
    card = ModelCard(hub.files["README.md"].decode())
    meta = card.data.to_dict()
    assert meta["library_name"] == "dllm-viz" and meta["license"] == "mit"
    assert meta["base_model"] == "GSAI-ML/LLaDA-8B-Instruct"
    assert meta["pipeline_tag"] == "reinforcement-learning" and meta["metrics"] == ["accuracy"]
    assert {"dllm-viz", "unmasking-policy", "grpo"} <= set(meta["tags"])
    assert hub.validated and all(hub.validated)  # the metadata passed the (stub) Hub's check
    original = ModelCard((shipped_policy / "README.md").read_text()).text
    assert card.text.strip() == original.strip()


def test_a_folder_without_a_card_is_refused_before_the_hub_is_called(hub, shipped_policy):
    (shipped_policy / "README.md").unlink()
    result = push(hub, shipped_policy)
    assert result.returncode == 2
    assert "has no README.md (write its card with: python -m dllm_viz.rl.card" in result.stderr
    assert hub.requests == []


def test_the_hubs_refusal_is_reported_not_raised(hub, shipped_policy):
    hub.repo_id = "ann/"  # not owner/name: refused before any request
    result = push(hub, shipped_policy)
    assert result.returncode == 2 and "must be of the form 'owner/name'" in result.stderr
    assert hub.requests == []


def test_dry_run_prepares_the_folder(shipped_policy, tmp_path):
    dest = tmp_path / "prepared"
    dest.mkdir()
    names = prepare_upload(shipped_policy, dest)
    assert names[:3] == ["README.md", "config.json", "model.safetensors"]
    assert sorted(p.name for p in dest.iterdir()) == sorted(names)
    assert ModelCard((dest / "README.md").read_text()).data.to_dict()["library_name"] == "dllm-viz"
    assert (dest / "model.safetensors").read_bytes() == (shipped_policy / "model.safetensors").read_bytes()
    with pytest.raises(ValueError, match=r"--base-model \('llada'\) must be a Hub id"):
        prepare_upload(shipped_policy, dest, base_model="llada")


def test_card_metadata_block():
    block = card_metadata("GSAI-ML/LLaDA-8B-Instruct")
    assert block.startswith("---\n") and block.endswith("\n---\n")
    meta = ModelCard(block + "# x\n").data.to_dict()
    assert meta["base_model"] == "GSAI-ML/LLaDA-8B-Instruct" and meta["library_name"] == "dllm-viz"
    assert "base_model" not in ModelCard(card_metadata(None) + "# x\n").data.to_dict()
    assert base_model_of("GSAI-ML/LLaDA-8B-Instruct") == "GSAI-ML/LLaDA-8B-Instruct"
    assert base_model_of(str(ROOT / "assets" / "tiny-dllm")) is None  # the built-in model is not on the Hub
    assert base_model_of("assets/tiny-dllm") is None and base_model_of(None) is None


def test_a_card_written_from_a_run_carries_the_metadata(tiny_model_dir, tmp_path):
    from dllm_viz.rl.card import main as card_main
    from dllm_viz.rl.train import main as train_main

    args = ["--iterations", "1", "--warmup", "1", "--prompts", "1", "--group-size", "2", "--eval-problems", "2"]
    train_main(["--model", str(tiny_model_dir), "--out-dir", str(tmp_path / "run"), *args, "--gen-length", "16"])
    assert card_main([str(tmp_path / "run"), str(tmp_path / "shipped"), "--no-curves"]) == 0
    card = ModelCard((tmp_path / "shipped" / "README.md").read_text())
    meta = card.data.to_dict()
    assert meta["library_name"] == "dllm-viz" and "base_model" not in meta  # trained on a local folder
    assert card.text.lstrip().startswith("# Unmasking policy `shipped`")
