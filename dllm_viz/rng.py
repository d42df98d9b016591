"""Random numbers per row, so a problem decodes the same alone, in any batch and at any position.

A single generator shared by a batch hands each row whatever numbers are left after the rows
before it: the same problem and seed then decode differently depending on their batch
(measured: 1 row in 6 changed). Here each row owns a stream keyed by the run's seed, the row's
prompt ids and which copy of that prompt it is (the k-th identical prompt of a batch, so the G
rollouts of a GRPO group still differ). Streams are counter-based: draw ``n`` of a row seeds a
fresh generator from ``(key, n)``, so a row's whole random state is two integers — small enough
to keep in a trace at every step, and the same on every device type.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

import torch

STATE_FIELDS = 2  # (key, draws so far) per row, int64
ROW_STATE_BYTES = STATE_FIELDS * 8  # one row's key and draw count, as the bytes a trace keeps


def row_keys(seed: int, prompt_ids: Sequence[Sequence[int]]) -> list[int]:
    """One 63-bit key per row from (seed, prompt ids, copy index among identical prompts)."""
    seen: dict[tuple[int, ...], int] = {}
    keys = []
    for ids in prompt_ids:
        ids = tuple(int(t) for t in ids)
        copy = seen.get(ids, 0)
        seen[ids] = copy + 1
        text = f"{int(seed)}|{copy}|{','.join(map(str, ids))}".encode()
        keys.append(int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big") >> 1)
    return keys


class RowRNG:
    """The random streams of a batch's rows (see the module docstring).

    Args:
        keys: one key per row (:func:`row_keys`).
        device: where draws are returned (and, on CUDA, generated).
        gen_length: L; a draw whose second dimension is shorter (a KV-cache window over the last
            positions) takes the last positions of a full-length draw, so each position's number
            does not depend on the window the batch happened to use.
    """

    def __init__(self, keys: Sequence[int], device: torch.device | str, gen_length: int):
        self.keys = [int(k) for k in keys]
        self.draws = [0] * len(self.keys)
        self.device = torch.device(device)
        self.gen_length = gen_length
        self._gen = torch.Generator(device=self.device)

    @classmethod
    def for_prompts(
        cls, seed: int, prompt_ids: Sequence[Sequence[int]], device: torch.device | str, gen_length: int
    ) -> RowRNG:
        return cls(row_keys(seed, prompt_ids), device, gen_length)

    def rows(self, rows: torch.Tensor | slice) -> RowDraws:
        """The draws of the rows ``rows`` selects (a slice for all, or an index tensor)."""
        index = range(len(self.keys))[rows] if isinstance(rows, slice) else rows.tolist()
        return RowDraws(self, list(index))

    def _draw(self, row: int, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        n = self.draws[row]
        self.draws[row] = n + 1
        self._gen.manual_seed((self.keys[row] * 1_000_003 + n) % (2**63))
        return torch.rand(shape, dtype=dtype, device=self.device, generator=self._gen)

    def get_state(self) -> torch.Tensor:
        """(B · 16,) uint8: each row's key and draw count (what :meth:`set_state` takes)."""
        pairs = torch.tensor([[k, n] for k, n in zip(self.keys, self.draws, strict=True)], dtype=torch.int64)
        return pairs.reshape(-1).view(torch.uint8).clone()

    def set_state(self, state: torch.Tensor) -> None:
        """Continue from :meth:`get_state`'s bytes; ValueError if they are not this batch's."""
        expected = len(self.keys) * STATE_FIELDS * 8
        if not isinstance(state, torch.Tensor) or state.dtype != torch.uint8 or state.numel() != expected:
            raise ValueError(
                f"the random state must be {expected} bytes (a key and a draw count per row), got "
                f"{getattr(state, 'numel', lambda: '?')()} — recorded by an older version with one shared generator?"
            )
        pairs = state.cpu().contiguous().view(torch.int64).reshape(-1, STATE_FIELDS).tolist()
        self.keys = [int(k) for k, _ in pairs]
        self.draws = [int(n) for _, n in pairs]


class RowDraws:
    """Uniform draws for a subset of rows: :meth:`rand` gives row ``i`` of its result from row
    ``index[i]``'s stream. Strategies receive one as ``DecodeState.generator``."""

    def __init__(self, rng: RowRNG, index: list[int]):
        self.rng, self.index = rng, index

    def rand(self, shape: Sequence[int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
        shape = tuple(int(s) for s in shape)
        if not shape or shape[0] != len(self.index):
            raise ValueError(f"a draw for {len(self.index)} rows needs shape ({len(self.index)}, ...), got {shape}")
        tail = shape[1:]
        L = self.rng.gen_length
        window = bool(tail) and tail[0] < L
        full = (L, *tail[1:]) if window else tail
        out = [self.rng._draw(row, full, dtype) for row in self.index]
        if not out:
            return torch.empty(shape, dtype=dtype, device=self.rng.device)
        stacked = torch.stack(out)
        return stacked[:, L - tail[0] :] if window else stacked


def uniform(
    shape: Sequence[int],
    device: torch.device | str,
    generator: torch.Generator | RowDraws | None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``torch.rand`` from a torch generator (or the global one), or per row from :class:`RowDraws`."""
    if isinstance(generator, RowDraws):
        return generator.rand(shape, dtype).to(device)
    return torch.rand(tuple(shape), dtype=dtype, device=device, generator=generator)


def encode_rng(state: torch.Tensor) -> str:
    """A row's random state as the base64 text a :class:`~dllm_viz.trace.TraceStep` keeps."""
    return base64.b64encode(state.cpu().numpy().tobytes()).decode("ascii")


def decode_rng(encoded: str) -> torch.Tensor | None:
    """A :class:`~dllm_viz.trace.TraceStep`'s ``rng`` as a row's state (None: recorded by a
    version with one shared generator, which this engine cannot continue)."""
    state = torch.frombuffer(bytearray(base64.b64decode(encoded)), dtype=torch.uint8)
    return state if state.numel() == ROW_STATE_BYTES else None


def initial_rng(seed: int, prompt_ids: Sequence[int], gen_length: int) -> torch.Tensor:
    """The random state a one-row decode of ``prompt_ids`` with ``seed`` starts from."""
    return RowRNG.for_prompts(seed, [prompt_ids], "cpu", gen_length).get_state()


def state_after(
    recorded: Sequence[str | None], k: int, seed: int, prompt_ids: Sequence[int], gen_length: int
) -> torch.Tensor:
    """A row's random state after ``k`` steps, from the states its steps recorded (base64, None
    where unchanged; :func:`encode_rng`).

    The last state recorded in the first ``k`` steps; with none there, no draw has happened yet,
    so the state is the row's key with zero draws — the key of any state recorded later (a row
    whose key is not a one-row decode's records its state at step 0), else the seed's initial
    state (:func:`initial_rng`). States written by a version with one shared generator are not continued."""
    kept = [s for s in recorded[:k] if s is not None]
    state = decode_rng(kept[-1]) if kept else None
    if state is None and not kept:
        later = (decode_rng(s) for s in recorded[k:] if s is not None)
        state = next((s for s in later if s is not None), None)
        if state is not None:
            state = state.clone()
            state[ROW_STATE_BYTES // STATE_FIELDS :] = 0  # (key, draws) as int64: the same key, no draw yet
    if state is None:
        state = initial_rng(seed, prompt_ids, gen_length)
    return state
