"""Low-memory loading of the native models: an empty model on the target device, filled shard by shard.

``PreTrainedModel.from_pretrained`` followed by ``.to("cuda")`` holds the whole model in host memory
first (≈ 16 GB for LLaDA-8B in bf16). Here the model is built on the ``meta`` device (no memory),
materialised uninitialised on the target device, and each tensor of each safetensors shard is read
(memory-mapped) and copied into its parameter, converting the dtype on the way. Host memory then
holds at most one shard's mapped pages and one tensor; on a GPU the weights never sit in host memory
as a whole. Before any of that, :func:`check_fits` compares the weights' size with the device's free
memory and refuses a load that cannot fit, naming both numbers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

import torch
from safetensors import safe_open

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel

M = TypeVar("M", bound="PreTrainedModel")

INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"
# Room beyond the weights for activations, logits, the features and the CUDA context: 10 % of the
# weights, at least 512 MiB (an 8B bf16 model then needs ≈ 17.6 GB free: it fits a 24 GB card, not a 16 GB one).
HEADROOM_FRACTION = 0.10
HEADROOM_MIN_BYTES = 512 * 2**20


class InsufficientMemory(RuntimeError):
    """The weights (plus headroom) do not fit the device's free memory."""


def weight_bytes(model: torch.nn.Module) -> int:
    """Bytes of every parameter and buffer at the model's dtype (works on a ``meta`` model)."""
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def free_bytes(device: torch.device) -> int | None:
    """Free memory on ``device``: CUDA's free bytes, or the host's ``MemAvailable`` for the CPU
    (Linux; None elsewhere, and for other device types, where no check is made)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type == "cpu":
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            return None
    return None


def required_bytes(weights: int) -> int:
    return weights + max(int(weights * HEADROOM_FRACTION), HEADROOM_MIN_BYTES)


def check_fits(name: str, weights: int, dtype: torch.dtype, device: torch.device) -> None:
    """Raise :class:`InsufficientMemory` when ``weights`` bytes plus headroom exceed ``device``'s free memory."""
    free = free_bytes(device)
    need = required_bytes(weights)
    if free is not None and need > free:
        raise InsufficientMemory(
            f"model {name!r} needs {weights / 1e9:.2f} GB of weights in {str(dtype).removeprefix('torch.')} "
            f"(+ {(need - weights) / 1e9:.2f} GB headroom) on {device}, which has {free / 1e9:.2f} GB free; "
            "use a device with more memory, a smaller dtype, or free the memory other models hold"
        )


def checkpoint_files(folder: Path) -> list[Path]:
    """The safetensors files of a local checkpoint folder: the shards its index names, or the single file."""
    index = folder / INDEX_NAME
    if index.is_file():
        weight_map = json.loads(index.read_text()).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise ValueError(f"{index.name} has no weight_map")
        return [folder / name for name in dict.fromkeys(weight_map.values())]
    if (folder / SINGLE_NAME).is_file():
        return [folder / SINGLE_NAME]
    raise OSError(f"{folder} holds neither {INDEX_NAME} nor {SINGLE_NAME}")


def resolve_checkpoint(model: str, local_files_only: bool) -> list[Path]:
    """Local paths of the safetensors files of a folder or Hub id (downloaded into the Hub cache)."""
    if Path(model).is_dir():
        return checkpoint_files(Path(model))
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        index = Path(hf_hub_download(model, INDEX_NAME, local_files_only=local_files_only))
    except EntryNotFoundError:  # not sharded
        return [Path(hf_hub_download(model, SINGLE_NAME, local_files_only=local_files_only))]
    shards = dict.fromkeys(json.loads(index.read_text())["weight_map"].values())
    return [Path(hf_hub_download(model, shard, local_files_only=local_files_only)) for shard in shards]


def empty_model(model_cls: type[M], config: PretrainedConfig, dtype: torch.dtype) -> M:
    """``model_cls(config)`` on the meta device at ``dtype``: shapes only, no memory, no init."""
    with torch.device("meta"):
        model = model_cls(config)
    # PreTrainedModel.to is wrapped with functools.wraps, whose typeshed type does not bind self;
    # typed as nn.Module.to it is the same call, and it returns the model itself.
    return cast(M, cast(torch.nn.Module, model).to(dtype))


def load_into(model: M, files: list[Path], device: torch.device) -> M:
    """Materialise ``model`` (a meta model) on ``device`` and fill it from ``files``, one tensor at a time.

    Every parameter and buffer must come from the checkpoint and every checkpoint tensor must have a
    place (names and shapes as published), else ``ValueError`` lists what is missing, unexpected or
    mis-shaped; nothing is initialised at random.
    """
    model = model.to_empty(device=device)
    targets = dict(model.named_parameters()) | dict(model.named_buffers())
    loaded: set[str] = set()
    unexpected: list[str] = []
    with torch.no_grad():
        for file in files:
            # Read on the CPU (the file's pages are mapped, not copied) and copy each tensor to its place.
            with safe_open(os.fspath(file), framework="pt", device="cpu") as shard:
                for name in shard.keys():
                    target = targets.get(name)
                    if target is None:
                        unexpected.append(name)
                        continue
                    tensor = shard.get_tensor(name)
                    if tuple(tensor.shape) != tuple(target.shape):
                        raise ValueError(
                            f"{file.name}: {name} has shape {tuple(tensor.shape)}, the model expects "
                            f"{tuple(target.shape)}"
                        )
                    target.copy_(tensor)
                    loaded.add(name)
                    del tensor
    missing = sorted(set(targets) - loaded)
    if missing or unexpected:
        raise ValueError(
            f"checkpoint does not match the model: missing {missing[:8]}{' …' if len(missing) > 8 else ''}, "
            f"unexpected {sorted(unexpected)[:8]}{' …' if len(unexpected) > 8 else ''}"
        )
    return model.eval()
