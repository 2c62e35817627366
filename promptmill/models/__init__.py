"""Model backends. Import a backend module only when it is used: llama.cpp and openai are heavy."""

from .base import Generation, GenerationParams, Model
from .registry import available_models, load_model

__all__ = ["Generation", "GenerationParams", "Model", "available_models", "load_model"]
