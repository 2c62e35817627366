"""Prompt optimization: search methods behind one interface, under a statistical protocol."""

from .base import Optimizer
from .budget import Budget, BudgetExhausted
from .context import Candidate, OptimizationContext
from .gate import AcceptanceGate
from .registry import available_optimizers, get_optimizer
from .run import OptimizationResult, estimate, optimize

__all__ = ["AcceptanceGate", "Budget", "BudgetExhausted", "Candidate", "OptimizationContext",
           "OptimizationResult", "Optimizer", "available_optimizers", "estimate",
           "get_optimizer", "optimize"]
