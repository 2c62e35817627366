"""The acceptance gate: a challenger replaces the incumbent only if a paired test says so."""

from __future__ import annotations

from dataclasses import dataclass

from ..stats import PairedComparison, paired_test


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    comparison: PairedComparison | None
    reason: str


@dataclass(frozen=True)
class AcceptanceGate:
    """``alpha`` is the significance level; ``enabled=False`` accepts any higher mean."""

    alpha: float = 0.05
    enabled: bool = True

    def judge(self, incumbent: dict[str, float], challenger: dict[str, float]) -> Verdict:
        shared = sorted(set(incumbent) & set(challenger))
        if not shared:
            return Verdict(False, None, "no shared validation examples")
        a = [incumbent[k] for k in shared]
        b = [challenger[k] for k in shared]
        comparison = paired_test(a, b, alpha=self.alpha, label_a="incumbent",
                                 label_b="challenger")
        gain = comparison.diff.mean
        if not self.enabled:
            return Verdict(gain > 0, comparison, f"gate off: gain {gain * 100:+.1f} points")
        if gain > 0 and comparison.significant:
            return Verdict(True, comparison, comparison.verdict)
        reason = ("not better" if gain <= 0 else
                  f"gain {gain * 100:+.1f} points is not significant "
                  f"(p={comparison.p_value:.3g} >= {self.alpha})")
        return Verdict(False, comparison, reason)
