"""Where a pretrained encoder comes from: an mkd asset name, a local folder, or a hub name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkd.errors import MkdError


def resolve(name: str, fetch_missing: bool = False) -> str:
    from mkd import assets

    if name in assets.ASSETS:
        return str(assets.asset_path(name, fetch_missing))
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise MkdError(f"{path} is not a Hugging Face model folder (no config.json)",
                           "give a folder written by save_pretrained, or an asset name (mkd fetch --list)")
        return str(path)
    if name.startswith((".", "/", "~")):
        raise MkdError(f"model folder {name} does not exist", "check the path, or use an asset name (mkd fetch --list)")
    return name  # a hub name, for users who are online


def load_encoder(name: str, trust_remote_code: bool = False, fetch_missing: bool = False) -> tuple[Any, Any]:
    """(model, fast tokenizer) of a pretrained encoder; remote code only when the recipe says so."""
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    where = resolve(name, fetch_missing)
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, use_fast=True, trust_remote_code=trust_remote_code)
        model = AutoModel.from_pretrained(where, trust_remote_code=trust_remote_code, use_safetensors=True)
    except (OSError, ValueError) as e:
        raise MkdError(f"cannot load encoder '{name}' ({str(e).splitlines()[0][:120]})",
                       "use an asset name (mkd fetch --list), a local folder with safetensors weights, "
                       "or a hub name while online") from None
    return model, tokenizer
