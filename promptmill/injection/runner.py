"""Send the attack suite to a served prompt and report the attack success rate with a 95% CI."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..stats import Estimate, mean_ci
from .suite import Attack, load_suite, new_canary


@dataclass
class Outcome:
    attack: Attack
    sent: str
    output: str | None
    success: bool | None  # None: an error, or a leak check without the instruction
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.attack.id, "category": self.attack.category,
                "detector": self.attack.detector, "attack": self.sent, "output": self.output,
                "success": self.success, "error": self.error}


@dataclass
class InjectionReport:
    """Attack success rate over the judged attacks, per category, and what got through."""

    url: str
    canary: str
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def judged(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.success is not None]

    @property
    def rate(self) -> Estimate:
        return mean_ci([1.0 if o.success else 0.0 for o in self.judged])

    def wilson(self) -> tuple[float, float]:
        """Wilson interval: unlike the bootstrap, it is not a point when no attack succeeds."""
        from scipy.stats import binomtest

        n = len(self.judged)
        if n == 0:
            return float("nan"), float("nan")
        ci = binomtest(sum(bool(o.success) for o in self.judged), n).proportion_ci(
            0.95, method="wilson")
        return float(ci.low), float(ci.high)

    def by_category(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for o in self.outcomes:
            row = out.setdefault(o.attack.category, {"n": 0, "succeeded": 0, "errors": 0,
                                                     "not_judged": 0})
            row["n"] += 1
            row["succeeded"] += bool(o.success)
            row["errors"] += o.error is not None
            row["not_judged"] += o.success is None and o.error is None
        return out

    @property
    def got_through(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.success]

    def to_dict(self) -> dict[str, Any]:
        est, (w_low, w_high) = self.rate, self.wilson()
        return {"url": self.url, "attacks": len(self.outcomes), "judged": len(self.judged),
                "succeeded": len(self.got_through),
                "errors": sum(o.error is not None for o in self.outcomes),
                "attack_success_rate": est.mean, "ci_low": est.low, "ci_high": est.high,
                "wilson_low": w_low, "wilson_high": w_high,
                "by_category": self.by_category(),
                "got_through": [o.to_dict() for o in self.got_through]}


def shape_input(text: str, fields: list[str] | None, target: str | None = None) -> str:
    """The user message carrying the attack: raw text, or JSON for multi-field templates."""
    if not fields or len(fields) == 1:
        return text
    target = target or fields[0]
    return json.dumps({f: text if f == target else "" for f in fields}, ensure_ascii=False)


def run_injection(url: str, *, api_key: str | None = None, instruction: str | None = None,
                  fields: list[str] | None = None, target_field: str | None = None,
                  suite: list[Attack] | None = None, concurrency: int = 4,
                  canary: str | None = None, timeout: float = 120.0) -> InjectionReport:
    """Send every attack to the OpenAI-compatible endpoint at ``url`` (ending in /v1)."""
    import openai

    attacks = suite if suite is not None else load_suite()
    report = InjectionReport(url, canary or new_canary())
    client = openai.OpenAI(base_url=url, api_key=api_key or "not-needed", max_retries=0,
                           timeout=timeout)

    def one(attack: Attack) -> Outcome:
        sent = attack.filled(report.canary)
        message = shape_input(sent, fields, target_field)
        try:
            reply = client.chat.completions.create(
                model="served", messages=[{"role": "user", "content": message}])
        except openai.APIError as exc:
            return Outcome(attack, sent, None, None, _error_text(exc))
        output = reply.choices[0].message.content or ""
        return Outcome(attack, sent, output,
                       attack.succeeded(output, report.canary, instruction))

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        report.outcomes = list(pool.map(one, attacks))
    client.close()
    return report


def _error_text(exc: Exception) -> str:
    status = getattr(exc, "status_code", None)
    message = getattr(exc, "message", None) or type(exc).__name__
    return f"HTTP {status}: {message}" if status else message
