"""Share a policy on the Hugging Face Hub: its weights, config, training curves and card, with Hub metadata.

    python -m dllm_viz.rl.push assets/policies/semi-ar-alpha1 you/dllm-viz-semi-ar-alpha1
    dllm-viz push-policy outputs/my-policy you/my-policy --private --base-model GSAI-ML/LLaDA-8B-Instruct

FOLDER is a policy folder with its card, as ``python -m dllm_viz.rl.card`` writes it. What is sent:
the card (README.md; a metadata block is added when it has none, ``--base-model`` sets or replaces
its base model), model.safetensors, config.json, and trained_for.json / training_curves.png / training_metrics.jsonl
when present; nothing else. The folder is checked (the weights load as a policy) before the Hub is
contacted. Log in first (``hf auth login``) or set ``HF_TOKEN``; ``HF_ENDPOINT`` picks another Hub.
Anyone can then decode with it: ``policy:you/dllm-viz-semi-ar-alpha1``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path
from typing import cast

from .card import base_model_of, card_metadata

REQUIRED = ("README.md", "config.json", "model.safetensors")
OPTIONAL = ("trained_for.json", "training_curves.png", "training_metrics.jsonl")


def prepare_upload(folder: Path, dest: Path, base_model: str | None = None) -> list[str]:
    """Copy what a policy repo holds from ``folder`` to the empty folder ``dest``; returns the file names.

    Raises:
        ValueError: ``folder`` lacks a file (named), its weights do not load, or ``base_model`` is not a Hub id.
    """
    from huggingface_hub import ModelCard, ModelCardData

    from ..policy import DiTConfidencePolicy

    if not folder.is_dir():
        raise ValueError(f"policy folder {folder} does not exist")
    missing = [name for name in REQUIRED if not (folder / name).is_file()]
    if missing:
        hint = " (write its card with: python -m dllm_viz.rl.card RUN_DIR FOLDER)" if "README.md" in missing else ""
        raise ValueError(f"policy folder {folder} has no {', '.join(missing)}{hint}")
    if base_model is not None and base_model_of(base_model) != base_model:
        raise ValueError(f"--base-model ({base_model!r}) must be a Hub id of the form 'owner/name'")
    DiTConfidencePolicy.from_pretrained(folder)  # the weights load, from safetensors only, or this raises
    card = ModelCard((folder / "README.md").read_text(encoding="utf-8"))
    if not card.data.to_dict():  # a card written before cards carried metadata
        card = ModelCard(card_metadata(base_model) + card.text)
    elif base_model is not None:
        cast(ModelCardData, card.data).base_model = base_model  # a ModelCard's data is ModelCardData
    names = [*REQUIRED, *(name for name in OPTIONAL if (folder / name).is_file())]
    for name in names[1:]:
        shutil.copyfile(folder / name, dest / name)
    (dest / "README.md").write_text(str(card), encoding="utf-8")
    return names


def push_policy(
    folder: Path,
    repo_id: str,
    *,
    private: bool = False,
    base_model: str | None = None,
    token: str | None = None,
    message: str | None = None,
) -> str:
    """Create (or reuse) the model repo ``repo_id`` and upload the policy in one commit; returns the commit's URL.

    Raises:
        ValueError: as :func:`prepare_upload`, or ``repo_id`` is not ``owner/name``, before any request.
        huggingface_hub.errors.HfHubHTTPError: the Hub refused (not logged in, no write access, ...).
    """
    from huggingface_hub import HfApi

    if base_model_of(repo_id) != repo_id:
        raise ValueError(f"repo id ({repo_id!r}) must be of the form 'owner/name'")
    with tempfile.TemporaryDirectory(prefix="dllm-viz-push-") as tmp:
        names = prepare_upload(folder, Path(tmp), base_model)
        api = HfApi(token=token)
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id,
            repo_type="model",
            folder_path=tmp,
            commit_message=message or f"Upload dllm-viz policy {folder.name} ({', '.join(names)})",
        )
    return str(commit.commit_url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dllm_viz.rl.push", description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a policy folder with its card (python -m dllm_viz.rl.card)")
    parser.add_argument("repo_id", help="the Hub model repo to create or update, owner/name")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--base-model", default=None, help="Hub id of the dLLM it steers (the card's base_model)")
    parser.add_argument("--message", default=None, help="commit message")
    parser.add_argument(
        "--dry-run", type=Path, default=None, metavar="DIR", help="write what would be uploaded to DIR; no upload"
    )
    args = parser.parse_args(argv)
    try:
        if args.dry_run is not None:
            args.dry_run.mkdir(parents=True, exist_ok=True)
            if any(args.dry_run.iterdir()):
                raise ValueError(f"--dry-run folder {args.dry_run} is not empty")
            print(
                "\n".join(
                    str(args.dry_run / name) for name in prepare_upload(args.folder, args.dry_run, args.base_model)
                )
            )
            return 0
        print(
            push_policy(
                args.folder, args.repo_id, private=args.private, base_model=args.base_model, message=args.message
            )
        )
    except (OSError, ValueError) as err:  # the Hub's HTTP errors (HfHubHTTPError) are OSErrors too
        parser.exit(2, f"error: {err}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
