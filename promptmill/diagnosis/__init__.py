"""Why a model fails: failure taxonomy, clusters, slices, robustness, calibration, fixes.

``diagnose(run_id)`` reads a finished run from the store and needs no model calls; robustness
checks and calibration re-scoring call the model and are separate steps.
"""

from .core import Diagnosis, diagnose
from .data import DiagnoseError
from .taxonomy import CATEGORIES

__all__ = ["CATEGORIES", "DiagnoseError", "Diagnosis", "diagnose"]
