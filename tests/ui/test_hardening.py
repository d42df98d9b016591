"""The app's handlers against hostile input (escaped messages, bounded caches and files, checked
values), plus property-based fuzzing of trace and policy uploads: any input either loads (and
renders) or raises our own ``gr.Error`` whose message holds no raw HTML and no server path. The
HTTP side (cancels, concurrency, soak) is in ``test_server_load.py``."""

from __future__ import annotations

import json
import os
import threading
import time

import gradio as gr
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dllm_viz.engine import EngineConfig, generate
from dllm_viz.strategies import build_strategy
from dllm_viz.trace import Trace
from dllm_viz.ui import allowed_models, budget, endpoints, files, pane, runtime
from dllm_viz.ui.compare import export_files, load_trace, play_tick, replay, run_compare
from dllm_viz.ui.errors import user_errors
from dllm_viz.ui.settings import prepare_uploaded_policy

PAYLOAD = (
    '<a href="https://evil.example/login">Session expired - click to sign in</a>'
    "<img src=https://evil.example/p.gif><form><input name=pw type=password></form><style>*{}</style>"
)
HEUR = [0, 0.9, 1.0, 0.01, 1.0, 1.0, None]


@pytest.fixture(autouse=True)
def private_files(tmp_path, monkeypatch, tiny_model_dir):
    """Each test gets its own export/upload folder; the tiny model is an allowed folder."""
    monkeypatch.setenv(files.FILES_ENV, str(tmp_path / "files"))
    monkeypatch.setenv(allowed_models.ALLOW_ENV, str(tiny_model_dir))
    return tmp_path / "files"


def assert_safe(message: str) -> None:
    """A message fit for the toast: no raw markup, no server path."""
    assert "<" not in message and ">" not in message, message
    for folder in ("/tmp", "/work", "/proc", "/home", "/root", os.getcwd()):
        assert folder not in message, message


def error_of(fn, *args) -> str:
    with pytest.raises(gr.Error) as info:
        result = fn(*args)
        if hasattr(result, "__next__"):
            list(result)
    assert_safe(info.value.message)
    return info.value.message


@pytest.fixture(scope="module")
def trace_json(tiny_backend) -> str:
    config = EngineConfig(gen_length=8, block_length=4)
    strategy = build_strategy("threshold", threshold=0.3)
    records = list(generate(tiny_backend, ["one plus two"], strategy, config))
    ids = tiny_backend.encode_prompt("one plus two")
    return Trace.from_records(records, 0, tiny_backend, "one plus two", ids, strategy, config, text="x").to_json()


def _file(tmp_path, data, name="t.json") -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


# ---- echoed values are escaped and capped ---------------------------------------------------


def test_d2_html_in_a_trace_field_is_escaped_in_the_toast(tmp_path, trace_json):
    data = {**json.loads(trace_json), "version": PAYLOAD}
    message = error_of(load_trace, _file(tmp_path, data))
    assert "&lt;a href=" in message and "unsupported trace schema version" in message
    assert len(message) < 500


def test_d2_unknown_strategy_is_escaped(tiny_model_dir):
    """The strategy dropdowns accept any value, so Gradio's own unescaped choices error never fires."""
    message = error_of(
        run_compare, str(tiny_model_dir), "q", 16, 8, False, 0.0, 0, PAYLOAD[:90], *HEUR, "heuristic:confidence", *HEUR
    )
    assert "pane A" in message and "&lt;a href" in message


def test_d2_long_values_are_capped(tmp_path):
    message = error_of(
        run_compare, "x" * 5000, "q", 16, 8, False, 0.0, 0, "heuristic:confidence", *HEUR, "heuristic:confidence", *HEUR
    )
    assert "5,000 characters" in message and "x" * 100 not in message


# ---- sizes are checked before a model is built ----------------------------------------------


def _rss_mb() -> float:
    return next(int(line.split()[1]) / 1024 for line in open("/proc/self/status") if line.startswith("VmRSS:"))


def test_d3_huge_policy_config_is_refused_before_allocation(tmp_path):
    weights = tmp_path / "model.safetensors"
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(4)}, str(weights))
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"hidden_size": 4096, "num_heads": 2, "ffn_size": 16384}))
    before = _rss_mb()
    message = error_of(pane.check_policy_upload, [str(weights), str(config)], "A")
    assert "`hidden_size` (4096) must be an integer between 1 and 1024" in message
    assert _rss_mb() - before < 100  # building it cost +1.2 GB before the fix


# ---- uploaded policies are keyed by content, bounded --------------------------------------


def _policy(tmp_path, seed=0):
    from dllm_viz.policy import DiTConfidencePolicy, PolicyConfig

    torch.manual_seed(seed)
    folder = tmp_path / f"policy-{seed}"
    DiTConfidencePolicy(PolicyConfig(hidden_size=16, num_heads=2, ffn_size=32, time_embed_dim=8)).save_pretrained(
        folder
    )
    return [str(folder / "model.safetensors"), str(folder / "config.json")]


def test_d4_same_policy_uploaded_again_reuses_folder_and_network(tmp_path, private_files, monkeypatch):
    monkeypatch.setattr(runtime, "_POLICIES", type(runtime._POLICIES)())
    uploaded = _policy(tmp_path)
    folders = {prepare_uploaded_policy(uploaded, "A") for _ in range(5)}
    assert len(folders) == 1 and len(runtime._POLICIES) == 1
    assert len(list(private_files.glob("policy-*"))) == 1
    for seed in range(1, runtime.MAX_POLICIES + 3):
        prepare_uploaded_policy(_policy(tmp_path, seed), "B")
    assert len(runtime._POLICIES) == runtime.MAX_POLICIES


def test_d4_an_upload_as_gradio_file_data_is_read_from_its_path(tmp_path):
    """/compare and /explore run with preprocess=False: a policy upload arrives as Gradio's file data."""
    uploaded = _policy(tmp_path)
    assert prepare_uploaded_policy([{"path": p, "meta": {"_type": "gradio.FileData"}} for p in uploaded], "A") == (
        prepare_uploaded_policy(uploaded, "A")
    )
    with pytest.raises(TypeError, match="must be a list of files"):
        prepare_uploaded_policy([{"url": "x"}], "A")


def test_d4_rejected_policy_leaves_no_folder(tmp_path, private_files):
    weights, _ = _policy(tmp_path)
    for bad in ("[1, 2, 3]", '{"hidden_size": "big"}', "[" * 5000, '{"bogus": 1}'):
        config = tmp_path / "config.json"
        config.write_text(bad)
        message = error_of(pane.check_policy_upload, [weights, str(config)], "A")
        assert "the uploaded policy cannot be used" in message
    assert not private_files.exists()  # a bad config is refused before anything is written
    # weights that do not fit the (default) config: the folder is written, the load fails, it goes
    message = error_of(pane.check_policy_upload, [weights], "A")
    assert "the uploaded policy cannot be used" in message
    assert not list(private_files.iterdir())


# ---- models by canonical path, allow-listed, bounded --------------------------------------


def test_d5_spellings_of_one_folder_share_one_cache_key(monkeypatch):
    builtin = runtime.BUILTIN_MODEL
    monkeypatch.chdir(runtime.ASSETS.parent)  # the folder holding assets/
    spellings = [
        builtin,
        builtin + "/",
        builtin + "/./",
        "assets/tiny-dllm",
        "./assets/../assets/tiny-dllm",
        "/proc/self/cwd/assets/tiny-dllm",
    ]
    assert {allowed_models.canonical_model(s) for s in spellings} == {str(os.path.realpath(builtin))}


def test_d5_folders_outside_the_allow_list_are_refused_alike(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    messages = set()
    for name in (
        str(tmp_path / "model"),
        str(tmp_path / "nothing-here"),
        "/etc",
        "/proc/self/cwd/../../etc",
        "../../../../etc",
    ):
        message = error_of(
            run_compare, name, "q", 16, 8, False, 0.0, 0, "heuristic:confidence", *HEUR, "heuristic:confidence", *HEUR
        )
        messages.add(message.split("is not available here")[1])
    assert len(messages) == 1  # the same wording whether or not the folder exists


def test_d5_backend_cache_is_bounded(monkeypatch, tiny_model_dir, tmp_path):
    monkeypatch.setattr(runtime, "_BACKENDS", type(runtime._BACKENDS)())
    monkeypatch.setattr(runtime, "MAX_BACKENDS", 1)
    monkeypatch.setattr(runtime, "load_backend", lambda name, **kwargs: object())
    monkeypatch.setattr(runtime, "_warm_up", lambda backend: None)
    monkeypatch.setenv(allowed_models.ALLOW_ENV, str(tmp_path))
    for i in range(3):
        (tmp_path / f"m{i}").mkdir()
        runtime.get_backend(str(tmp_path / f"m{i}"))
        runtime.get_backend(str(tmp_path / f"m{i}") + "/.")
    assert list(runtime._BACKENDS) == [str((tmp_path / "m2").resolve())]


# ---- uploaded traces ----------------------------------------------------------------------


def test_d6_unknown_and_bulky_fields_are_dropped(tmp_path, trace_json):
    data = json.loads(trace_json)
    data["surprise"] = ["x"] * 1000
    data["meta"] = {"note": "kept", "blob": [{}] * 100, "deep": {"a": {"b": 1}}}
    data["steps"][0]["extra"] = {"x": 1}
    comp = list(load_trace(_file(tmp_path, data)))[-1]["session"]
    assert comp.a.meta == {"note": "kept"} and not hasattr(comp.a, "surprise")


def test_d6_a_file_of_millions_of_tiny_objects_is_refused_before_parsing(tmp_path, trace_json):
    data = json.loads(trace_json)
    data["meta"] = {"x": [{}] * 200_000}
    message = error_of(load_trace, _file(tmp_path, data))
    assert "JSON objects, while a trace has one per step" in message


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda d: d.update(text=123), "text must be text"),
        (lambda d: d["steps"][0].update(step="1"), "step, nfe and block"),
        (lambda d: d["steps"][0].update(model_ms=None), "model_ms and step_ms"),
        (lambda d: d["steps"][0]["topk_ids"][0].__setitem__(0, 1.5), "topk_ids must hold token ids"),
        (lambda d: d.update(vocab={"1": 2}), "vocab must map"),
    ],
)
def test_d7_wrong_typed_fields_give_a_message_not_a_silent_failure(tmp_path, trace_json, mutate, expected):
    data = json.loads(trace_json)
    mutate(data)
    assert expected in error_of(load_trace, _file(tmp_path, data))


def test_d7_non_numeric_expected_answer_is_refused(tmp_path, trace_json):
    pair = {"format": "dllm-viz-comparison", "version": 1, "expected": "abc", "a": json.loads(trace_json)}
    assert "not an answer this app can check" in error_of(load_trace, _file(tmp_path, pair))


# ---- clear messages for odd inputs ---------------------------------------------------------

RUN = ["q", 16, 8, False, 0.0, 0]


@pytest.mark.parametrize(
    "index, value, expected",
    [
        (2, float("inf"), "gen length (inf) must be a finite number"),
        (2, float("-inf"), "gen length (-inf) must be a finite number"),
        (2, [16], "gen length must be a number, not list"),
        (6, float("inf"), "seed (inf) must be a finite number"),
        (6, 2**70, "seed (1180591620717411303424) must be between 0 and 4294967295"),
        (1, "caf\udce9", "the prompt contains an invalid character at position 3"),
        (1, "x" * 5000, "the prompt is 5,000 characters long"),
        (2, 1e300, "gen length (10000000000000000525047…) must be between 1 and 512"),  # not 301 digits
        (2, "<b>16</b>", "gen length ('&lt;b&gt;16&lt;/b&gt;') must be a number"),
        (3, {"x": 1}, "block length must be a number, not dict"),
        (4, "yes", "full diffusion must be true or false, not str"),
        (0, ["m"], "the model must be text, not list"),
    ],
)
def test_d8_odd_run_settings_get_clear_messages(tiny_model_dir, index, value, expected):
    args = [str(tiny_model_dir), *RUN]
    args[index] = value
    message = error_of(run_compare, *args, "heuristic:confidence", *HEUR, "heuristic:confidence", *HEUR)
    assert expected in message


def test_d9_odd_strategy_parameters_get_clear_messages(tiny_model_dir):
    threshold = ["heuristic:threshold", 0, "x", 1.0, 0.01, 1.0, 1.0, None]
    message = error_of(run_compare, str(tiny_model_dir), *RUN, *threshold, "heuristic:confidence", *HEUR)
    assert "pane A threshold ('x') must be a number" in message
    message = error_of(
        endpoints.compare_trace,
        "q",
        "heuristic:threshold",
        "heuristic:confidence",
        {"threshold": [0.5]},
        None,
        16,
        8,
        0.0,
        0,
        str(tiny_model_dir),
    )
    assert "params A 'threshold' must be a number, not list" in message
    message = error_of(
        endpoints.compare_trace,
        "q",
        "heuristic:threshold",
        "heuristic:confidence",
        None,
        None,
        16,
        8,
        0.0,
        2**64,
        str(tiny_model_dir),
    )
    assert "seed" in message and "Overflow" not in message


def test_d9_policy_errors_never_show_server_paths(tmp_path):
    bogus = tmp_path / "model.safetensors"
    bogus.write_bytes(b"\x80\x04 a pickle" * 10)
    message = error_of(pane.check_policy_upload, [str(bogus)], "A")
    assert "model.safetensors" in message and "not a safetensors file" in message


# ---- exports are cached by content, bounded, and share the compute budget --------------------


@pytest.fixture(scope="module")
def finished(tiny_model_dir):
    os.environ[allowed_models.ALLOW_ENV] = str(tiny_model_dir)
    try:
        frames = list(
            run_compare(
                str(tiny_model_dir),
                "one plus two is",
                16,
                4,
                False,
                0.0,
                0,
                "heuristic:confidence",
                *HEUR,
                "heuristic:threshold",
                *HEUR,
                "full speed",
            )
        )
    finally:
        os.environ.pop(allowed_models.ALLOW_ENV)
    return frames[-1]["session"]


def test_d10_export_is_reused_for_the_same_content(finished, private_files):
    first = export_files(finished)
    for _ in range(5):
        assert export_files(finished)["dl_json"].value == first["dl_json"].value
    assert len(list(private_files.iterdir())) == 1


def test_d10_export_folder_is_bounded(finished, private_files, monkeypatch):
    monkeypatch.setattr(files, "MAX_ENTRIES", 4)
    for i in range(10):
        finished.expected = str(i)  # a different content each time
        export_files(finished)
    finished.expected = None
    assert len(list(private_files.iterdir())) == 4


def test_d10_export_waits_for_a_compute_slot(finished):
    leases = [budget.acquire("a test") for _ in range(budget.MODEL_CONCURRENCY)]
    done = threading.Event()
    worker = threading.Thread(target=lambda: (export_files(finished), done.set()))
    try:
        worker.start()
        time.sleep(0.5)
        assert not done.is_set()
    finally:
        for lease in leases:
            lease.release()
    worker.join(30)
    assert done.is_set()


def test_d10_gif_frames_shrink_with_length():
    assert files.GIF_CELL_BUDGET // 4096 == 8 and min(64, files.GIF_CELL_BUDGET // 64) == 64


# ---- property-based fuzzing -----------------------------------------------------------------------

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
    | st.sampled_from([PAYLOAD, "/tmp/secret/x", "\udce9"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
FIELDS = [
    "version",
    "model",
    "prompt",
    "prompt_ids",
    "gen_length",
    "block_length",
    "mask_id",
    "eos_id",
    "strategy",
    "engine",
    "steps",
    "vocab",
    "text",
    "meta",
]
STEP_FIELDS = [
    "step",
    "nfe",
    "block",
    "committed",
    "confidence",
    "proposed",
    "topk_ids",
    "topk_probs",
    "probs",
    "model_ms",
    "step_ms",
]


@st.composite
def mutated_traces(draw, base: str):
    data = json.loads(base)
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            data[draw(st.sampled_from(FIELDS))] = draw(JSON)
        elif isinstance(data.get("steps"), list) and data["steps"] and isinstance(data["steps"][0], dict):
            step = data["steps"][draw(st.integers(0, len(data["steps"]) - 1))]
            if isinstance(step, dict):
                step[draw(st.sampled_from(STEP_FIELDS))] = draw(JSON)
    if draw(st.booleans()):
        data = {
            "format": "dllm-viz-comparison",
            "version": 1,
            "labels": draw(JSON),
            "expected": draw(JSON),
            "a": data,
            "b": draw(st.none() | st.just(data)),
        }
    return data


def _check_upload(path: str) -> None:
    try:
        out = list(load_trace(path))  # a generator of updates by output name
    except gr.Error as err:
        assert_safe(err.message)
        return
    comp = out[-1]["session"]
    for k in (0, 1, comp.num_steps):  # replay and playback render every step without failing
        replay(k, comp)
        play_tick(k, comp)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_trace_uploads(tmp_path, trace_json, data):
    case = data.draw(st.one_of(mutated_traces(trace_json), JSON))
    path = tmp_path / "fuzz.json"
    path.write_bytes(json.dumps(case, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    _check_upload(str(path))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")))
def test_fuzz_trace_bytes(tmp_path, raw):
    path = tmp_path / "fuzz.json"
    path.write_bytes(raw)
    _check_upload(str(path))


POLICY_KEYS = [
    "hidden_size",
    "num_heads",
    "ffn_size",
    "num_blocks",
    "time_embed_dim",
    "top_p",
    "smart_init",
    "time_period",
    "bogus",
]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    config=st.dictionaries(st.sampled_from(POLICY_KEYS), JSON | st.integers(0, 10**9), max_size=5) | JSON,
    weights=st.sampled_from(["valid", "empty", "pickle", "random"]),
    rnd=st.binary(min_size=8, max_size=64),
)
def test_fuzz_policy_uploads(tmp_path, config, weights, rnd):
    folder = tmp_path / "upload"
    folder.mkdir(exist_ok=True)
    valid_weights, _ = _policy(tmp_path)
    path = folder / "model.safetensors"
    path.write_bytes(
        {"valid": open(valid_weights, "rb").read(), "empty": b"", "pickle": b"\x80\x04" + rnd, "random": rnd}[weights]
    )
    (folder / "config.json").write_text(
        json.dumps(config, ensure_ascii=False), encoding="utf-8", errors="surrogatepass"
    )
    try:
        with user_errors("Policy upload"):
            prepare_uploaded_policy([str(path), str(folder / "config.json")], "A")
    except gr.Error as err:
        assert_safe(err.message)
        assert "unexpected internal error" not in err.message


def test_f6_messages_quote_the_users_input_and_cut_only_server_paths(tmp_path):
    """Path-stripping once turned ``../../etc`` into ``..etc`` and a relative policy folder into
    ``assetssemi-ar-alpha1``; only the server's own folders are cut now."""
    from dllm_viz.ui.errors import public_message

    assert public_message("model '../../etc' is not available") == "model '../../etc' is not available"
    assert "assets/policies/semi-ar-alpha1" in public_message("no policy assets/policies/semi-ar-alpha1")
    assert public_message(f"cannot read {tmp_path}/model/config.json") == "cannot read config.json"
    assert public_message(f"bad {os.getcwd()}/assets/x and /proc/self/cwd") == "bad x and cwd"


@pytest.mark.parametrize(
    "k, message",
    [
        ("12abc", "step ('12abc') must be a number"),
        (-1, "step (-1) must be at least 0"),
        (True, "step must be a number, not bool"),
        ([1], "step must be a number, not list"),
        (2.5, "step (2.5) must be a whole number"),
    ],
)
def test_replay_names_a_bad_step(k, message):
    """/replay skips Gradio's slider checks (generic errors, or a message naming no argument)."""
    with pytest.raises(gr.Error) as err:
        replay(k, None)
    assert err.value.message == f"Cannot show that step: {message}"


def test_file_inputs_refuse_a_non_upload_by_name():
    """Gradio checks a file input against its data model before any handler (its pydantic error
    reached clients as the generic one); an upload passes the same model as before."""
    upload = pane.checked_file(label="Replay a trace file", file_types=[".json"])
    checked = {"context": {"validate_meta": True}}
    for value in ("12abc", 5, {"path": "/etc/passwd"}):  # the last: not marked as an upload
        with pytest.raises(gr.Error, match="Replay a trace file: send an uploaded file"):
            upload.data_model.model_validate(value, **checked)
    with pytest.raises(gr.Error, match="&lt;b&gt;"):  # echoed escaped
        upload.data_model.model_validate("<b>", **checked)
    sent = {"path": "x.json", "meta": {"_type": "gradio.FileData"}}
    assert upload.data_model.model_validate(sent, **checked).path == "x.json"
    assert upload.data_model.__name__ == "FileData"  # the API page names the type as before
