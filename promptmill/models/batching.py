"""Continuous batching for llama.cpp: many sequences decoded together in one ``llama_decode``.

One scheduler thread owns a llama context with one KV stream per sequence (``kv_unified`` off)
plus stream 0, which holds the prefix the queued requests share. A request that joins copies
stream 0 to its slot, trims it to the prefix it really shares, and feeds only its own suffix;
then every step decodes one token for each active sequence. A sequence leaves as soon as it
meets end-of-turn, a stop string or its token limit, and the next queued request takes its slot
at the next step, whether it came from the same ``generate_many`` call or from another thread
(``serve``'s concurrent clients).

Why separate streams: each sequence's cells then lie exactly as in a sequential run (prefix,
suffix, answer, from cell 0), and the weight kernels compute each token's row on its own, so a
greedy answer does not depend on which other requests shared its batch.
``tests/models/test_batching.py`` holds the batched and sequential paths equal on the real model.

Sampling copies llama-cpp-python's high-level chain (greedy at temperature 0; else top-k 40,
typical 1, top-p, min-p 0.05, temperature, a seeded draw), with the grammar of an output spec in
front, so a seeded answer is the same through either path too.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from ..errors import ModelError
from ..redact import prefix_at_end
from .base import Generation, GenerationParams

MIN_SHARED = 8  # tokens: a shorter shared prefix costs less to recompute than a stream copy
HIGH_LEVEL_TOP_K, HIGH_LEVEL_MIN_P = 40, 0.05  # llama-cpp-python's create_*_completion defaults

PieceFn = Callable[[str], None]


@dataclass(eq=False)
class Job:
    """One request in the scheduler, from queued to finished."""

    tokens: list[int]
    params: GenerationParams
    stops: tuple[str, ...]
    on_piece: PieceFn | None = None
    done: threading.Event = field(default_factory=threading.Event)
    result: Generation | None = None
    error: BaseException | None = None
    slot: int = -1
    pos: int = 0
    feed: list[int] = field(default_factory=list)
    out: list[int] = field(default_factory=list)
    text: bytearray = field(default_factory=bytearray)
    sent: int = 0  # characters of text already handed to on_piece
    sampler: Any = None
    started: float = 0.0
    tails: list[list[int]] | None = None  # a scoring job: the answer options' tokens
    scores: list[float] = field(default_factory=list)

    def wait(self) -> Generation:
        self.done.wait()
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result

    def wait_scores(self) -> list[float]:
        self.done.wait()
        if self.error is not None:
            raise self.error
        return self.scores


class BatchEngine:
    """A scheduler thread decoding up to ``width`` sequences at a time on one llama context."""

    def __init__(self, llama: Any, *, width: int, seq_ctx: int, n_threads: int,
                 n_threads_batch: int, grammar: Callable[[str], Any], where: str):
        import llama_cpp

        self._ll = llama_cpp
        self._grammar, self.where = grammar, where
        self.width, self.seq_ctx = max(1, width), seq_ctx
        params = llama_cpp.llama_context_default_params()
        source = llama.context_params
        for name in ("flash_attn_type", "type_k", "type_v", "rope_freq_base", "rope_freq_scale",
                     "rope_scaling_type", "yarn_ext_factor", "yarn_attn_factor",
                     "yarn_beta_fast", "yarn_beta_slow", "yarn_orig_ctx", "offload_kqv"):
            setattr(params, name, getattr(source, name))
        self.n_batch = int(source.n_batch)
        params.n_ctx = seq_ctx * (self.width + 1)
        params.n_batch = params.n_ubatch = self.n_batch
        params.n_seq_max = self.width + 1
        params.kv_unified = False
        params.n_threads, params.n_threads_batch = n_threads, n_threads_batch
        params.no_perf = True
        self._ctx = llama_cpp.llama_init_from_model(llama.model, params)
        if not self._ctx:
            raise ModelError("llama.cpp could not create a batched context", where=where,
                             fix="lower batch_width, or set batch_width=1")
        self._mem = llama_cpp.llama_get_memory(self._ctx)
        self._vocab = llama_cpp.llama_model_get_vocab(llama.model)
        self._batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)
        self._holder: list[int] = []  # the tokens stream 0 holds
        self._queue: deque[Job] = deque()
        self._tasks: deque[tuple[Callable[[], Any], Future]] = deque()
        self._active: dict[int, Job] = {}
        self._wake = threading.Condition()
        self._closed = False
        self.steps = 0  # decode calls, for benchmarks
        self.timings: dict[int, float] = {}  # seconds per sequence by width, once measured
        self._thread = threading.Thread(target=self._loop, name="promptmill-batch", daemon=True)
        self._thread.start()

    @property
    def idle(self) -> bool:
        with self._wake:
            return not self._queue and not self._active

    # --- the public side ------------------------------------------------------------------
    def submit(self, tokens: list[int], params: GenerationParams, stops: Sequence[str] = (),
               on_piece: PieceFn | None = None) -> Job:
        job = Job(list(tokens), params, tuple(s for s in stops if s), on_piece)
        room = self.seq_ctx - len(job.tokens)
        if room <= 0:
            job.error = ModelError(f"Requested tokens ({len(job.tokens)}) exceed context window "
                                   f"of {self.seq_ctx}", where=self.where,
                                   fix="shorten the prompt, use fewer demos or raise n_ctx")
            job.done.set()
            return job
        with self._wake:
            if self._closed:
                raise ModelError("the model is closed", where=self.where,
                                 fix="load the model again")
            self._queue.append(job)
            self._wake.notify()
        return job

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the engine's thread, between steps, and return what it returns.

        Everything that computes on llama.cpp in this model runs on that one thread: OpenMP
        keeps a thread team per calling thread, and with a second team in the process each
        forward pass ran about 50% slower (measured on 2 cores)."""
        if threading.current_thread() is self._thread:
            return fn()
        future: Future = Future()
        with self._wake:
            if self._closed:
                raise ModelError("the model is closed", where=self.where,
                                 fix="load the model again")
            self._tasks.append((fn, future))
            self._wake.notify()
        return future.result()

    def submit_scores(self, tokens: list[int], tails: list[list[int]]) -> Job:
        """Queue a scoring job: the log-likelihood of each tail after ``tokens``."""
        job = Job(list(tokens), GenerationParams(), (), tails=[list(t) for t in tails])
        with self._wake:
            self._queue.append(job)
            self._wake.notify()
        return job

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout=30)
        ll = self._ll
        if self._ctx:
            ll.llama_batch_free(self._batch)
            ll.llama_free(self._ctx)
            self._ctx = None

    def measure(self, context: int = 128, suffix: int = 8, steps: int = 4,
                tolerance: float = 1.1) -> int:
        """The widest width whose time per sequence is within ``tolerance`` of the best,
        timed on a synthetic prefix before any request arrives.

        Each width runs what an evaluation does: a wave of sequences joins the shared prefix
        and prefills a short suffix together, then decodes a few tokens. Timing decode steps
        alone would miss that a wider wave also prefills for less per token. Near-ties go to
        the wider width because this measure flatters small ones: a real evaluation admits
        them in waves of half the width (end to end, a width of 4 ran at 1.16x a sequential
        loop, 8 at 1.27x and 16 at 1.40x, where this measure put 8 and 16 within 5%)."""
        with self._wake:
            assert not self._queue and not self._active, "measure() only on an idle engine"
        ll = self._ll
        n_vocab = ll.llama_vocab_n_tokens(self._vocab)
        tokens = [(7 * i + 11) % n_vocab for i in range(context + suffix + steps)]
        self._fill(0, tokens[:context], 0, want_last=False)
        self._decode()
        per_sequence: dict[int, float] = {}
        width = 1
        while width <= self.width and width * suffix <= self.n_batch:
            slots = range(1, width + 1)
            for slot in slots:
                ll.llama_memory_seq_rm(self._mem, slot, -1, -1)
                ll.llama_memory_seq_cp(self._mem, 0, slot, -1, -1)
            feeds = [(tokens[context:context + suffix], context)] + [
                ([tokens[context + suffix + i]], context + suffix + i) for i in range(steps)]
            start = time.perf_counter()
            for feed, pos in feeds:
                for slot in slots:
                    self._fill(slot, feed, pos, want_last=True, append=True)
                self._decode()
            per_sequence[width] = (time.perf_counter() - start) / width
            width *= 2
        for slot in range(self.width + 1):
            ll.llama_memory_seq_rm(self._mem, slot, -1, -1)
        self._holder = []
        best = min(per_sequence.values())
        self.timings = per_sequence
        return max(w for w, t in per_sequence.items() if t <= tolerance * best)

    # --- the scheduler thread -------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._wake:
                while not (self._closed or self._queue or self._active or self._tasks):
                    self._wake.wait()
                if self._closed:
                    self._fail_all(ModelError("the model was closed mid-request",
                                              where=self.where, fix="load the model again"))
                    return
                tasks = list(self._tasks)
                self._tasks.clear()
            for fn, future in tasks:
                try:
                    future.set_result(fn())
                except BaseException as exc:  # noqa: BLE001 - handed back to the caller
                    future.set_exception(exc)
            try:
                self._admit()
                self._step()
            except BaseException as exc:  # noqa: BLE001 - a failed step fails its requests
                self._fail_all(exc if isinstance(exc, ModelError) else
                               ModelError(f"batched decoding failed ({exc})", where=self.where,
                                          fix="set batch_width=1 to decode one at a time"))

    def _fail_all(self, error: BaseException) -> None:
        with self._wake:
            jobs = list(self._active.values()) + list(self._queue)
            tasks = list(self._tasks)
            self._active.clear()
            self._queue.clear()
            self._tasks.clear()
        for _, future in tasks:
            future.set_exception(error)
        for job in jobs:
            self._finish(job, error=error)

    def _admit(self) -> None:
        """Let queued requests into the free slots, in waves when many wait.

        A wave's suffixes are prefilled together in the same micro-batches, which costs less
        per token than one short suffix at a time; so while more requests queue than there are
        free slots (an evaluation), they join once half the slots are free. Requests that all
        find room (``serve`` under light load) join at the next step."""
        with self._wake:
            free = self.width - len(self._active)
            if not free or not self._queue:
                return
            if self._active and free < min(len(self._queue), self._wave_size()):
                return
            waiting = list(self._queue)[:max(free, 2)]
        self._refresh_holder(waiting)
        self._compact(even_with_queue=True)
        with self._wake:
            joining = [self._queue.popleft() for _ in range(min(free, len(self._queue)))]
        # longest suffix first: as the shorter ones end, the rest still lie in consecutive slots
        joining.sort(key=lambda job: len(job.tokens) - self._shareable(job.tokens),
                     reverse=True)
        first = len(self._active) + 1
        for offset, job in enumerate(joining):
            with self._wake:
                self._active[first + offset] = job
            self._start(job, first + offset)

    def _wave_size(self) -> int:
        """Free slots that let a queue in while other sequences decode: half the width."""
        return max(1, self.width // 2)

    def _shareable(self, tokens: list[int]) -> int:
        """How much of ``tokens`` a sequence takes from stream 0 rather than computing."""
        shared = min(_common_prefix(self._holder, tokens), len(tokens) - 1)
        return shared if shared >= MIN_SHARED else 0

    def _refresh_holder(self, waiting: list[Job]) -> None:
        """Rewrite stream 0 when the waiting requests share more than it holds."""
        shared = waiting[0].tokens[:-1]
        for job in waiting[1:]:
            shared = shared[:_common_prefix(shared, job.tokens[:-1])]
        keep = _common_prefix(self._holder, shared)
        if len(shared) - keep < MIN_SHARED:
            return
        self._ll.llama_memory_seq_rm(self._mem, 0, keep, -1)
        self._holder = self._holder[:keep]
        for start in range(keep, len(shared), self.n_batch):
            chunk = shared[start:start + self.n_batch]
            self._fill(0, chunk, start, want_last=False)
            self._decode()
        self._holder = list(shared)

    def _start(self, job: Job, slot: int) -> None:
        ll = self._ll
        job.slot, job.started = slot, time.perf_counter()
        ll.llama_memory_seq_rm(self._mem, slot, -1, -1)
        shared = self._shareable(job.tokens)
        if shared:
            ll.llama_memory_seq_cp(self._mem, 0, slot, -1, -1)  # a whole-stream copy
            ll.llama_memory_seq_rm(self._mem, slot, shared, -1)
        job.pos, job.feed = shared, job.tokens[shared:]
        if job.tails is not None:
            self._next_option(job)
        else:
            job.sampler = self._sampler(job.params)

    def _next_option(self, job: Job) -> None:
        """Point a scoring job at its next option: the prompt's last token, then the option's
        tokens but its last, each row's logits scoring the token after it."""
        assert job.tails is not None
        base = len(job.tokens) - 1
        if job.pos > base:
            self._ll.llama_memory_seq_rm(self._mem, job.slot, base, -1)
            job.pos = base
        tail = job.tails[len(job.scores)]
        job.feed = job.tokens[job.pos:] + tail[:-1]

    def _sampler(self, params: GenerationParams) -> Any:
        ll = self._ll
        chain = ll.llama_sampler_chain_init(ll.llama_sampler_chain_default_params())
        if params.constraint:
            grammar = self._grammar(params.constraint)
            ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_grammar(
                self._vocab, grammar._grammar.encode(), grammar._root.encode()))
        if params.temperature <= 0:
            ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_greedy())
        else:
            for sampler in (ll.llama_sampler_init_top_k(HIGH_LEVEL_TOP_K),
                            ll.llama_sampler_init_typical(1.0, 1),
                            ll.llama_sampler_init_top_p(params.top_p, 1),
                            ll.llama_sampler_init_min_p(HIGH_LEVEL_MIN_P, 1),
                            ll.llama_sampler_init_temp(params.temperature),
                            ll.llama_sampler_init_dist(params.seed & 0xFFFFFFFF)):
                ll.llama_sampler_chain_add(chain, sampler)
        return chain

    def _step(self) -> None:
        """Feed every active sequence its pending tokens in one ``llama_decode``: one token for
        a sequence that is decoding, the whole suffix for one that just joined.

        With one KV stream per sequence, llama.cpp splits a batch into micro-batches that take
        the same number of tokens from each of a run of consecutive sequence ids: here first
        one token of every sequence, then the rest of the joiners' suffixes together. That is
        why the active slots are kept consecutive (:meth:`_compact`) and a wave's longest
        suffixes take the lowest slots (:meth:`_admit`). A feed that does not fit beside the
        others (a long prompt without a shared prefix) goes in calls of its own."""
        self._compact()
        with self._wake:
            jobs = sorted(self._active.values(), key=lambda j: j.slot)
        rows: list[tuple[Job, int]] = []
        alone: list[Job] = []
        self._batch.n_tokens = 0
        for job in jobs:
            if not job.feed or job.done.is_set():
                continue
            outputs = self._outputs(job)
            if outputs is None:
                continue
            if len(job.feed) > self.n_batch - self._batch.n_tokens:
                alone.append(job)
                continue
            rows.append((job, self._batch.n_tokens + len(job.feed) - outputs))
            self._fill(job.slot, job.feed, job.pos, want_last=False, append=True,
                       outputs=outputs)
            job.pos += len(job.feed)
            job.feed = []
        if rows:
            self._decode()
        for job, row in rows:
            self._after_decode(job, row)
        for job in alone:
            self._prefill(job)

    def _outputs(self, job: Job) -> int | None:
        """The rows of logits a job needs from its feed (None: it cannot fit, and is ended)."""
        outputs = len(job.tails[len(job.scores)]) if job.tails is not None else 1
        if outputs > self.n_batch:
            self._finish(job, error=ModelError(
                "an answer option is longer than a batch", where=self.where,
                fix="raise n_batch or use shorter options"))
            return None
        return outputs

    def _prefill(self, job: Job) -> None:
        """A feed longer than a batch, in calls of its own; the logits it needs come last."""
        outputs = self._outputs(job)
        if outputs is None:
            return
        feed, job.feed = job.feed, []
        split = max(0, len(feed) - self.n_batch)  # the last call carries the output rows
        for start in range(0, split, self.n_batch):
            chunk = feed[start:min(start + self.n_batch, split)]
            self._fill(job.slot, chunk, job.pos, want_last=False)
            job.pos += len(chunk)
            self._decode()
        final = feed[split:]
        self._fill(job.slot, final, job.pos, want_last=False, outputs=outputs)
        job.pos += len(final)
        self._decode()
        self._after_decode(job, len(final) - outputs)

    def _after_decode(self, job: Job, row: int) -> None:
        if job.tails is not None:
            self._score(job, row)
        else:
            self._sample(job, row)

    def _compact(self, even_with_queue: bool = False) -> None:
        """Move the highest active sequences into free lower slots (a whole-stream copy costs
        far less than a forward pass per gap); between waves, the next wave fills the gaps."""
        ll = self._ll
        with self._wake:
            if self._queue and not even_with_queue:
                return
            for target in range(1, len(self._active) + 1):
                if target in self._active:
                    continue
                source = max(self._active)
                job = self._active.pop(source)
                ll.llama_memory_seq_rm(self._mem, target, -1, -1)
                ll.llama_memory_seq_cp(self._mem, source, target, -1, -1)
                ll.llama_memory_seq_rm(self._mem, source, -1, -1)
                job.slot = target
                self._active[target] = job

    def _score(self, job: Job, first_row: int) -> None:
        import numpy as np

        assert job.tails is not None
        tail = job.tails[len(job.scores)]
        n_vocab = self._ll.llama_vocab_n_tokens(self._vocab)
        per_token = []
        for i, token in enumerate(tail):
            pointer = self._ll.llama_get_logits_ith(self._ctx, first_row + i)
            logits = np.ctypeslib.as_array(pointer, shape=(n_vocab,))
            shifted = logits - logits.max()
            per_token.append(shifted[token] - np.log(np.exp(shifted).sum()))
        # float32 throughout and one numpy sum, as the sequential path computes it
        job.scores.append(float(np.asarray(per_token, dtype=np.float32).sum()))
        if len(job.scores) == len(job.tails):
            self._finish(job)
        else:
            self._next_option(job)

    def _fill(self, seq: int, tokens: list[int], pos: int, *, want_last: bool,
              append: bool = False, outputs: int = 0) -> None:
        """Add ``tokens`` of sequence ``seq`` to the batch, with logits for the last one
        (``want_last``) or the last ``outputs`` ones."""
        batch = self._batch
        n = batch.n_tokens if append else 0
        first_output = len(tokens) - (outputs or (1 if want_last else 0))
        for i, token in enumerate(tokens):
            batch.token[n + i] = token
            batch.pos[n + i] = pos + i
            batch.n_seq_id[n + i] = 1
            batch.seq_id[n + i][0] = seq
            batch.logits[n + i] = i >= first_output
        batch.n_tokens = n + len(tokens)

    def _decode(self) -> None:
        code = self._ll.llama_decode(self._ctx, self._batch)
        self.steps += 1
        self._batch.n_tokens = 0
        if code != 0:
            raise ModelError(f"llama_decode returned {code}", where=self.where,
                             fix="lower batch_width or n_ctx, or set batch_width=1")

    def _sample(self, job: Job, row: int) -> None:
        ll = self._ll
        token = ll.llama_sampler_sample(job.sampler, self._ctx, row)
        if ll.llama_vocab_is_eog(self._vocab, token):
            self._complete(job, "stop")
            return
        job.out.append(token)
        job.text += self._piece(token)
        text = job.text.decode("utf-8", errors="ignore")
        cut = _first_stop(text, job.stops)
        if cut is not None:
            self._complete(job, "stop", text[:cut])
            return
        if len(job.out) >= job.params.max_tokens or job.pos + 1 >= self.seq_ctx:
            self._complete(job, "length", text)
            return
        self._send(job, text)
        job.feed = [token]  # harmless if _send ended the job: it left the active set

    def _send(self, job: Job, text: str) -> None:
        """Hand a streaming client what can no longer turn into a stop string."""
        if job.on_piece is None:
            return
        hold = max((prefix_at_end(text, stop) for stop in job.stops), default=0)
        upto = len(text) - hold
        if upto <= job.sent:
            return
        self._hand_on(job, text[job.sent:upto])
        job.sent = upto

    def _hand_on(self, job: Job, piece: str) -> bool:
        """Give a streaming client its piece; a client that raises (it went away) ends only
        its own sequence, with that error."""
        assert job.on_piece is not None
        try:
            job.on_piece(piece)
        except Exception as exc:  # noqa: BLE001 - the caller gets it back from wait()
            self._finish(job, error=exc)
            return False
        return True

    def _piece(self, token: int) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = self._ll.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = self._ll.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, False)
        return buf.raw[:n]

    def _complete(self, job: Job, reason: str, text: str | None = None) -> None:
        if text is None:
            text = job.text.decode("utf-8", errors="ignore")
        if job.on_piece is not None and len(text) > job.sent:
            if not self._hand_on(job, text[job.sent:]):
                return
            job.sent = len(text)
        job.result = Generation(text=text, input_tokens=len(job.tokens),
                                output_tokens=len(job.out),
                                seconds=time.perf_counter() - job.started,
                                finish_reason=reason)
        self._finish(job)

    def _finish(self, job: Job, error: BaseException | None = None) -> None:
        if job.sampler is not None:
            self._ll.llama_sampler_free(job.sampler)
            job.sampler = None
        with self._wake:
            if self._active.get(job.slot) is job:
                del self._active[job.slot]
        job.error = error if error is not None else job.error
        job.done.set()


def measured_width(engine: BatchEngine, identity: str, threads: Any) -> int:
    """The width to decode at on this machine: measured once per model and thread setting,
    then remembered in the promptmill home directory."""
    import json
    import os

    from ..paths import home_dir
    from .threads import usable_cpus

    key = (f"{identity}|{threads.n_threads}/{threads.n_threads_batch}|cpus{usable_cpus()}"
           f"|max{engine.width}")
    path = home_dir() / "batch-widths.json"
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    if isinstance(known.get(key), int):
        return int(known[key])
    width = engine.measure()
    known[key] = width
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(known, indent=1))
        tmp.replace(path)
    except OSError:
        pass  # a read-only home: measure again next time
    return width


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def _first_stop(text: str, stops: tuple[str, ...]) -> int | None:
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(found) if found else None


__all__ = ["BatchEngine", "Job", "MIN_SHARED", "measured_width"]
