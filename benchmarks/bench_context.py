"""Contextualization on the embedded model: demo selection, constrained output, knowledge context.

Three parts, each reported with 95% CIs and paired p-values (McNemar on 0/1 scores):

1. Demo selection, on instruction-induction tasks (every single-field task with a 100-example
   test split, unless --tasks): zero-shot with the first human instruction, random k-shot and
   retrieved k-shot (embeddings by default, chosen before any run: most inputs here are a word
   or a short phrase, where BM25 finds no shared terms; --retrievers embedding,bm25 adds BM25),
   all with the same instruction and k. The pool is
   --pool examples of raw/induce; the test split is raw/execute.
2. Constrained output, on every instruction-induction task whose training answers form a closed
   label set: the format-violation rate (answer not exactly one of the labels) and accuracy,
   with and without the labels grammar.
3. Knowledge context: benchmarks/kb_manual, a fictional product manual and 60 questions about
   it. Answers with and without the top-k passages of a BM25 knowledge base.

Usage: python benchmarks/bench_context.py [--parts demos,constrained,kb] [--tasks a,b] [--k 4]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    ROOT,
    emit,
    environment,
    estimate,
    load_ii,
    metric_for,
    require_data,
    seed_instruction,
    simple_ii_tasks,
)

from promptmill.constrain import OutputSpec
from promptmill.context import DemoSelector, KnowledgeBase, KnowledgeContext
from promptmill.evaluation import Evaluator
from promptmill.metrics import get_metric
from promptmill.models import GenerationParams, load_model
from promptmill.prompt import Prompt
from promptmill.stats import paired_test
from promptmill.store.db import Store
from promptmill.strategies import closed_label_set
from promptmill.task import Example

PARAMS = GenerationParams(max_tokens=24, temperature=0.0, seed=0)
KB_DIR = ROOT / "benchmarks" / "kb_manual"


def compare(a: list[float], b: list[float]) -> dict:
    c = paired_test(a, b)
    return {"diff_points": round(100 * (c.mean_b - c.mean_a), 1), "p_value": c.p_value,
            "significant": c.significant, "winner": c.winner}


def run(evaluator: Evaluator, examples, prompt, task, contextualizer=None) -> tuple[list, float]:
    started = time.perf_counter()
    result = evaluator.evaluate(examples, prompt, task=task, split="test",
                                contextualizer=contextualizer)
    return [result.scores[ex.id] for ex in examples], time.perf_counter() - started


# --- 1. demo selection -------------------------------------------------------------------------
def demo_selection(model, store, args) -> dict:
    names = args.tasks.split(",") if args.tasks else simple_ii_tasks()
    retrievers = args.retrievers.split(",")
    rows = []
    for name in names:
        pool = load_ii(name, "induce")
        random.Random(args.seed).shuffle(pool)
        pool = pool[:args.pool]
        test = load_ii(name, "execute")[:args.test_limit]
        evaluator = Evaluator(model, get_metric(metric_for(name)), store, params=PARAMS,
                              progress=False)
        prompt = Prompt(instruction=seed_instruction(name), name=name)
        row = {"task": name, "n_test": len(test), "pool": len(pool), "k": args.k}
        scores, seconds = {}, {}
        conditions = {"zero_shot": None,
                      "random": DemoSelector(pool, args.k, "random", seed=args.seed)}
        for retriever in retrievers:
            conditions[retriever] = DemoSelector(pool, args.k, retriever, args.mmr_lambda)
        for label, selector in conditions.items():
            scores[label], seconds[label] = run(evaluator, test, prompt, name, selector)
            row[label] = estimate(scores[label])
        for retriever in retrievers:
            row[f"{retriever}_vs_random"] = compare(scores["random"], scores[retriever])
        row["random_vs_zero_shot"] = compare(scores["zero_shot"], scores["random"])
        row["seconds"] = {k: round(v, 1) for k, v in seconds.items()}
        rows.append(row)
        print(f"{name}: " + " ".join(f"{c} {row[c]['mean']:.2f}" for c in conditions),
              file=sys.stderr)

    def mean_of(label: str) -> float:
        return round(sum(r[label]["mean"] for r in rows) / len(rows), 4)

    summary = {label: mean_of(label) for label in ("zero_shot", "random", *retrievers)}
    for retriever in retrievers:
        key = f"{retriever}_vs_random"
        summary[f"{retriever}_significantly_better"] = [
            r["task"] for r in rows if r[key]["winner"] == "B"]
        summary[f"{retriever}_significantly_worse"] = [
            r["task"] for r in rows if r[key]["winner"] == "A"]
    return {"tasks": rows, "mean": summary}


# --- 2. constrained output ---------------------------------------------------------------------
def constrained_output(model, store, args) -> dict:
    rows = []
    for path in sorted((Path(args.data) / "raw" / "induce").glob("*.json")):
        first = next(iter(json.loads(path.read_text())["examples"].values()))
        if "input" not in first:
            continue
        labels = closed_label_set(load_ii(path.stem, "induce"))
        if labels is None:
            continue
        test = load_ii(path.stem, "execute")[:args.test_limit]
        evaluator = Evaluator(model, get_metric("exact"), store, params=PARAMS, progress=False)
        spec = OutputSpec(labels=labels)
        plain = Prompt(instruction=seed_instruction(path.stem), name=path.stem)
        # the same words in both arms: the format note alone, then the note plus the grammar
        noted = plain.model_copy(update={"output_format": spec.format_note()})
        constrained = plain.model_copy(update={"output_spec": spec})
        row = {"task": path.stem, "labels": list(labels), "n_test": len(test)}
        outcome = {}
        for label, prompt in (("without", noted), ("with", constrained)):
            result = evaluator.evaluate(test, prompt, task=path.stem, split="test")
            outputs = {r["example_id"]: r["output"] or "" for r in
                       store.iter_results(result.run_id)}
            invalid = [0.0 if spec.is_valid(outputs[ex.id]) else 1.0 for ex in test]
            outcome[label] = [result.scores[ex.id] for ex in test]
            row[label] = {"violation_rate": estimate(invalid), "accuracy":
                          estimate(outcome[label])}
        row["accuracy_with_vs_without"] = compare(outcome["without"], outcome["with"])
        rows.append(row)
        print(f"{path.stem}: violations {row['without']['violation_rate']['mean']:.2f} -> "
              f"{row['with']['violation_rate']['mean']:.2f}", file=sys.stderr)
    return {"tasks": rows}


# --- 3. knowledge context ----------------------------------------------------------------------
def knowledge_context(model, store, args) -> dict:
    questions = [json.loads(line) for line in
                 (KB_DIR / "questions.jsonl").read_text().splitlines() if line.strip()]
    examples = [Example(q["id"], {"question": q["question"]}, q["answer"],
                        tuple(q.get("answers", ()))) for q in questions]
    started = time.perf_counter()
    kb = KnowledgeBase.build(KB_DIR / "docs", kind=args.kb_kind)
    kb.save(Path(tempfile.mkdtemp(prefix="promptmill-kb-")))
    build_seconds = time.perf_counter() - started
    instruction = ("Answer the question about the Orrery K7 weather station with a short "
                   "answer: a number, code or name.")
    closed_book = Prompt(instruction=instruction, template="{{ question }}", name="kb-closed")
    open_book = Prompt(instruction=instruction + " Use the manual excerpts.",
                       template="Question: {{ question }}", context_slots=("knowledge",),
                       name="kb-open")
    evaluator = Evaluator(model, get_metric("contains"), store,
                          params=GenerationParams(max_tokens=32, seed=0), progress=False)
    without, s1 = run(evaluator, examples, closed_book, "kb_manual")
    with_kb, s2 = run(evaluator, examples, open_book, "kb_manual",
                      KnowledgeContext(kb, slot="knowledge", k=args.kb_k))
    hits = sum(any(p.id.split("#")[0] == q["source"] for p in kb.query(q["question"], args.kb_k))
               for q in questions)
    return {"questions": len(examples), "kb_chunks": len(kb.chunks), "kb_kind": args.kb_kind,
            "k": args.kb_k, "build_seconds": round(build_seconds, 2),
            "retrieval_source_recall": round(hits / len(questions), 4),
            "without": estimate(without), "with": estimate(with_kb),
            "with_vs_without": compare(without, with_kb),
            "seconds": {"without": round(s1, 1), "with": round(s2, 1)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="demos,constrained,kb")
    parser.add_argument("--tasks", default=None, help="demo selection tasks, comma-separated")
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--retrievers", default="embedding",
                        help="retrieved k-shot conditions, from embedding,bm25 (the first is "
                             "the one the floors are checked on)")
    parser.add_argument("--pool", type=int, default=1000)
    parser.add_argument("--mmr-lambda", type=float, default=0.7)
    parser.add_argument("--test-limit", type=int, default=100)
    parser.add_argument("--kb-kind", default="bm25", choices=["bm25", "embedding", "hybrid"])
    parser.add_argument("--kb-k", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--store", default=None, help="SQLAlchemy URL (default: a temp file)")
    args = parser.parse_args()
    parts = args.parts.split(",")
    from common import II

    args.data = str(II)
    if {"demos", "constrained"} & set(parts):
        require_data()
    store = Store(args.store or
                  f"sqlite:///{Path(tempfile.mkdtemp(prefix='promptmill-bench-')) / 'ctx.db'}")
    model = load_model("embedded")
    out = {"benchmark": "bench_context", "model": model.identity, "environment": environment(),
           "k": args.k, "seed": args.seed}
    if "demos" in parts:
        out["demo_selection"] = demo_selection(model, store, args)
    if "constrained" in parts:
        out["constrained_output"] = constrained_output(model, store, args)
    if "kb" in parts:
        out["knowledge_context"] = knowledge_context(model, store, args)
    emit("bench_context", out)


if __name__ == "__main__":
    main()
