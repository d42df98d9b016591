"""Refusing-by-default checks for policy checkpoints: safetensors + config.json only.

A policy directory may come from anyone (a shared link, a hub repo). Pickle-based formats
(``pytorch_model.bin``, ``*.pt``, ``*.pkl``) can run arbitrary code when loaded, so we never
open them, and we check a ``model.safetensors`` file's size and header before handing it
to the safetensors parser.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

if TYPE_CHECKING:
    from .config import PolicyConfig

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
MAX_CONFIG_BYTES = 64 * 1024  # a PolicyConfig is a few hundred bytes
MAX_HEADER_BYTES = 1024 * 1024  # safetensors JSON header: names, dtypes, shapes, offsets


def check_policy_dir(path: str | os.PathLike) -> Path:
    """Validate a local policy directory before anything in it is read.

    Raises:
        FileNotFoundError: ``path`` is not a directory.
        ValueError: ``model.safetensors`` is missing (naming any pickle checkpoint found
            instead), or ``config.json`` is larger than ``MAX_CONFIG_BYTES``. A missing
            ``config.json`` is allowed: the loader then assumes the default PolicyConfig.
    """
    directory = Path(path)
    if not directory.is_dir():
        raise FileNotFoundError(f"policy directory {str(directory)!r} does not exist")
    if not (directory / WEIGHTS_NAME).is_file():
        pickles = sorted(p.name for p in directory.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
        if pickles:
            raise ValueError(
                f"refusing to load pickle checkpoint(s) {pickles} in {str(directory)!r}: pickles can "
                f"run arbitrary code. Re-save the weights as {WEIGHTS_NAME} (save_pretrained does)."
            )
        raise ValueError(f"no {WEIGHTS_NAME} in policy directory {str(directory)!r}")
    config = directory / CONFIG_NAME
    if not config.is_file():
        return directory  # optional: the default (released) architecture is assumed
    read_policy_config(config)
    return directory


def read_policy_config(path: str | os.PathLike) -> PolicyConfig:
    """The :class:`PolicyConfig` in a config.json, checked (size, JSON object, known keys, bounds)
    before any model is built from it.

    Raises:
        ValueError / TypeError: the message says what is wrong with the file.
    """
    from .config import PolicyConfig

    path = Path(path)
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise ValueError(f"{path.name} is {size} bytes; a policy config is at most {MAX_CONFIG_BYTES}")
    try:
        data = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path.name} is not valid JSON ({err})") from None
    except RecursionError:
        raise ValueError(f"{path.name} is nested too deeply to be a policy config") from None
    return PolicyConfig.from_dict(data)


def check_safetensors_header(path: str | os.PathLike, max_bytes: int) -> None:
    """Check size and header of a would-be safetensors file without parsing its tensors.

    The format is an 8-byte little-endian header length N, N bytes of JSON, then raw data.
    A renamed ``torch.save`` file starts with ``PK`` (zip) or ``\\x80`` (pickle) and fails here.

    Raises:
        ValueError: the file is larger than ``max_bytes`` or is not a safetensors file.
    """
    path = Path(path)
    size = path.stat().st_size
    if size > max_bytes:
        raise ValueError(
            f"{str(path)!r} is {size} bytes, more than the {max_bytes} this policy config can need; refusing to load it"
        )
    with path.open("rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise ValueError(f"{str(path)!r} is not a safetensors file ({size} bytes, too short)")
        (header_len,) = struct.unpack("<Q", head)
        if header_len > min(MAX_HEADER_BYTES, size - 8):
            raise ValueError(
                f"{str(path)!r} is not a safetensors file (starts with {head[:4]!r}; "
                "a pickle or torch.save zip checkpoint renamed to .safetensors looks like this)"
            )
        header = handle.read(header_len)
    try:
        parsed = json.loads(header)
    except (UnicodeDecodeError, json.JSONDecodeError):
        parsed = None
    if not isinstance(parsed, dict):
        raise ValueError(f"{str(path)!r} is not a safetensors file (its header is not a JSON object)")


def load_safetensors_state(path: str | os.PathLike, max_bytes: int) -> dict[str, torch.Tensor]:
    """Checked, CPU-side state dict from a safetensors file; all tensors must be finite floats."""
    check_safetensors_header(path, max_bytes)
    try:
        state = load_file(str(path), device="cpu")
    except SafetensorError as err:
        raise ValueError(f"{str(path)!r} is not a valid safetensors file: {err}") from err
    for name, tensor in state.items():
        if not tensor.is_floating_point():
            raise ValueError(f"tensor {name!r} in {str(path)!r} has dtype {tensor.dtype}, expected a float")
        if not torch.isfinite(tensor).all():
            raise ValueError(f"tensor {name!r} in {str(path)!r} has NaN or inf values")
    return state
