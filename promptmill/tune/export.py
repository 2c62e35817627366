"""Merging a LoRA adapter into its base, and exporting the result for llama.cpp.

The merged model is saved as a Hugging Face folder. Turning that into a GGUF needs llama.cpp's
``convert_hf_to_gguf.py``, which no pip package ships: it is looked for in
``$LLAMA_CPP_DIR`` and on ``PATH``, and its absence is reported with the way to get it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from ..store.db import Store
from .errors import TuneError
from .registry import get_adapter, load_tuned

CONVERTER = "convert_hf_to_gguf.py"


def merge(store: Store, name: str, out: Path) -> Path:
    """Base + LoRA weights folded into one plain model, saved to ``out``."""
    row = get_adapter(store, name)
    if row["method"] != "lora":
        raise TuneError(f"adapter '{name}' is {row['method']}; only LoRA can be merged into the "
                        "weights", where=f"tune export {name}",
                        fix="serve soft prompts and prefixes with tuned:NAME instead")
    model, tokenizer, _ = load_tuned(row)
    merged = model.merge_and_unload()
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out


def find_converter() -> Path | None:
    folder = os.environ.get("LLAMA_CPP_DIR")
    if folder and (Path(folder) / CONVERTER).exists():
        return Path(folder) / CONVERTER
    found = shutil.which(CONVERTER)
    return Path(found) if found else None


def to_gguf(folder: Path, out_file: Path, outtype: str = "f16") -> Path:
    converter = find_converter()
    if converter is None:
        raise TuneError("llama.cpp's convert_hf_to_gguf.py was not found, so the merged model "
                        f"stays a Hugging Face folder at {folder}", where="--gguf",
                        fix="git clone https://github.com/ggml-org/llama.cpp, pip install -r "
                            "llama.cpp/requirements.txt, then set LLAMA_CPP_DIR=llama.cpp")
    subprocess.run([sys.executable, str(converter), str(folder), "--outfile", str(out_file),
                    "--outtype", outtype], check=True)
    return out_file
