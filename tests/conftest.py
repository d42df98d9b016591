"""Shared fixtures: tiny random transformers models built on the spot (never downloaded) and a
scripted backend whose logits make every decision predictable."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest
import torch

# Tiny models gain nothing from intra-op threads, and on shared cores spinning threads made
# 64 decoding steps 80x slower (measured: 0.10 s with 1 thread, 8.2 s with 2).
torch.set_num_threads(1)

WORDS = ["a", "b", "c", "d", "e", "one", "two", "three", "plus", "is", "Q", ":", "A"] + [str(d) for d in range(10)]


def build_word_tokenizer(chat: bool = True, max_length: int = 128, mask: bool = True):
    """A word-level tokenizer; ``mask=False`` leaves "[MASK]" in the vocabulary but registers no
    mask token, like LLaDA-8B's hub tokenizer (its mask id lives only in config.json)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[MASK]", "[EOS]"]
    vocab = {w: i for i, w in enumerate(specials + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Digits(individual_digits=True)]
    )
    tok.decoder = decoders.WordPiece(prefix="##")
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        unk_token="[UNK]",
        mask_token="[MASK]" if mask else None,
        eos_token="[EOS]",
        model_max_length=max_length,
    )
    if chat:
        fast.chat_template = "{% for m in messages %}Q : {{ m['content'] }}{% endfor %} A :"
    return fast


def save_tiny_masked_lm(path, arch: str = "modernbert", seed: int = 0, max_positions: int = 128):
    """A randomly initialised tiny masked LM + word tokenizer saved with save_pretrained."""
    from transformers import BertConfig, BertForMaskedLM, ModernBertConfig, ModernBertForMaskedLM

    torch.manual_seed(seed)
    tok = build_word_tokenizer(max_length=max_positions)
    # A large init scale gives peaked, position-dependent distributions (no confidence ties).
    common = dict(
        vocab_size=len(tok), pad_token_id=tok.pad_token_id, max_position_embeddings=max_positions, initializer_range=0.5
    )
    if arch == "modernbert":
        cfg = ModernBertConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            global_attn_every_n_layers=1,
            mask_token_id=tok.mask_token_id,
            bos_token_id=tok.eos_token_id,
            eos_token_id=tok.eos_token_id,
            cls_token_id=tok.eos_token_id,
            sep_token_id=tok.eos_token_id,
            **common,
        )
        model = ModernBertForMaskedLM(cfg)
    else:
        cfg = BertConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, **common)
        model = BertForMaskedLM(cfg)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    return save_tiny_masked_lm(tmp_path_factory.mktemp("tiny-modernbert"))


@pytest.fixture(scope="session")
def replica_dirs(tmp_path_factory):
    """Tiny random LLaDA (Instruct and Base) and Dream replicas in the hub's layout (tests/replicas.py)."""
    from replicas import save_dream_replica, save_llada_replica

    root = tmp_path_factory.mktemp("replicas")
    return {
        "llada": save_llada_replica(root / "llada-instruct"),
        "llada-base": save_llada_replica(root / "llada-base", instruct=False),
        "dream": save_dream_replica(root / "dream"),
    }


@pytest.fixture(scope="session")
def replica_backends(replica_dirs):
    """Native backends of the LLaDA-Instruct and Dream replicas, loaded once per session."""
    from dllm_viz.backends import load_backend

    return {name: load_backend(str(replica_dirs[name]), device="cpu") for name in ("llada", "dream")}


@pytest.fixture(scope="session")
def tiny_backend(tiny_model_dir):
    from dllm_viz.backends import load_backend

    return load_backend(str(tiny_model_dir), device="cpu")


class ScriptedBackend:
    """A backend whose logits come from a function of the canvas: decisions are predictable.

    ``score(position, canvas) -> (token, prob)``; the rest of the mass is spread evenly.
    """

    name = "scripted"

    def __init__(self, vocab_size=12, mask_id=0, eos_id=1, pad_id=1, max_length=512, fn=None):
        self.vocab_size, self.mask_id, self.eos_id, self.pad_id = vocab_size, mask_id, eos_id, pad_id
        self.max_length = max_length
        self.device = torch.device("cpu")
        self.fn = fn or (lambda pos, canvas: (2 + pos % (vocab_size - 2), 0.5))
        self.calls = 0

    def encode_prompt(self, prompt):
        return [2 + (len(w) % (self.vocab_size - 2)) for w in prompt.split()]

    def logits(self, input_ids, attention_mask):
        self.calls += 1
        B, T = input_ids.shape
        out = torch.empty(B, T, self.vocab_size)
        for b in range(B):
            for t in range(T):
                tok, p = self.fn(t, input_ids[b].tolist())
                probs = torch.full((self.vocab_size,), (1 - p) / (self.vocab_size - 1))
                probs[tok] = p
                out[b, t] = probs.log()
        return out

    def decode(self, ids):
        return " ".join(map(str, ids))

    def token_strings(self, ids):
        return [f"t{i}" for i in ids]


@pytest.fixture
def scripted():
    return ScriptedBackend


# ---- the served app ------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class ServedApp:
    url: str
    pid: int
    log: Path
    files: Path  # the app's export/upload folder ($DLLM_VIZ_EXPORT_DIR)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve_app(tmp_path_factory, tiny_model_dir, *args, **env_overrides):
    """``python app.py [args]`` on a free loopback port: ``$DLLM_VIZ_MODEL`` if set, else the built-in
    model when installed, else the tiny random one; its own Gradio temp and export folders."""
    from dllm_viz.ui import allowed_models

    port = _free_port()
    files = tmp_path_factory.mktemp("app-files")
    env = dict(
        os.environ,
        GRADIO_ANALYTICS_ENABLED="False",
        HF_HUB_OFFLINE="1",
        PYTHONUNBUFFERED="1",
        GRADIO_TEMP_DIR=str(tmp_path_factory.mktemp("gradio-tmp")),
        DLLM_VIZ_EXPORT_DIR=str(files),
    )
    if not allowed_models.builtin_model_installed() and not os.environ.get(allowed_models.MODEL_ENV):
        env[allowed_models.MODEL_ENV] = str(tiny_model_dir)  # an explicit $DLLM_VIZ_MODEL wins
    env.update(env_overrides)
    log = tmp_path_factory.mktemp("server") / "app.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port), *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"app did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
    try:
        yield ServedApp(url, proc.pid, log, files)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


# ---- a browser -----------------------------------------------------------------------------------

CHROMIUM = os.environ.get("DLLM_VIZ_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def chromium_page():
    """A Playwright page in Debian's Chromium, 60 s timeouts (2 shared cores: tests only wait for
    final states). Without Chromium the test is skipped, or fails where CI requires the browser."""
    if not CHROMIUM:
        message = "chromium is not installed (apt-get install -y chromium)"
        if os.environ.get("DLLM_VIZ_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=60_000)
    with sync_playwright() as p:
        args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[*args, "--disable-sync", "--no-first-run"])
        try:
            context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.set_default_timeout(60_000)
            yield page
        finally:
            browser.close()


# ---- the published trace schema (docs/trace-schema.json) -----------------------------------------

TRACE_SCHEMA = Path(__file__).resolve().parents[1] / "docs" / "trace-schema.json"


def schema_errors(data) -> list[str]:
    """Messages of every way ``data`` (parsed JSON) breaks the published trace/tree schema."""
    jsonschema = pytest.importorskip("jsonschema")  # the dev extra installs it
    schema = json.loads(TRACE_SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(data)]


# ---- each check owned once ------------------------------------------------------------------------


@pytest.fixture
def check_counts(monkeypatch):
    """How often a decode path validates a strategy (any strategy class's ``validate``), checks
    a branch's overrides and encodes a prompt (the transformers backends' ``encode_prompt``)."""
    import collections
    import inspect

    from dllm_viz import branch
    from dllm_viz.backends.hf import MaskedLMBackend
    from dllm_viz.strategies import heuristics, learned

    counts: collections.Counter = collections.Counter()

    def counting(owner, name, key):
        original = getattr(owner, name)

        def counted(*args, **kwargs):
            counts[key] += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, counted)

    for module in (heuristics, learned):
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and "validate" in vars(cls):
                counting(cls, "validate", "validate")
    counting(MaskedLMBackend, "encode_prompt", "encode")
    import dllm_viz.ui.exploration  # noqa: F401  # imported before counting, so its names are counted too

    for module in [m for name, m in sys.modules.items() if name.startswith("dllm_viz")]:
        if getattr(module, "check_overrides", None) is branch.check_overrides and module is not branch:
            counting(module, "check_overrides", "overrides")  # a name imported from branch: counted where used
    counting(branch, "check_overrides", "overrides")
    return counts
