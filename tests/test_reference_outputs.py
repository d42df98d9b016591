"""Every producer of traces gives the outputs recorded in ``tests/fixtures/reference`` (see
``tests/reference_runs.py``): refactors of the app and the trace builder change no token, step,
probability or header (probabilities to their last recorded digit, which CPUs may round apart)."""

from __future__ import annotations

import json

import pytest
import torch
from reference_runs import REFERENCE, RUNS, differences, record


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", sorted(RUNS))
def test_outputs_match_the_reference(name):
    reference = json.loads((REFERENCE / f"{name}.json").read_text())
    found = differences(reference, record(name))
    assert not found, f"{len(found)} difference(s):\n" + "\n".join(found[:20])


def test_the_comparison_sees_a_difference():
    ref = {"steps": [{"committed": [1], "rng": "AA=="}, {"committed": [2], "rng": None}]}
    assert differences(ref, {"steps": [{"committed": [1], "rng": "AA=="}, {"committed": [2], "rng": "BB=="}]}) == []
    assert differences(ref, {"steps": [{"committed": [1], "rng": "BB=="}, {"committed": [2], "rng": None}]})
    assert differences(ref, {"steps": [{"committed": [3], "rng": "AA=="}, {"committed": [2], "rng": None}]})
    probs = {"confidence": [0.6846, 1.0], "token": [12]}
    assert differences(probs, {"confidence": [0.6847, 0.9999], "token": [12]}) == []  # another CPU's rounding
    assert differences(probs, {"confidence": [0.6849, 1.0], "token": [12]})
    assert differences(probs, {"confidence": [0.6846, 1.0], "token": [13]})
