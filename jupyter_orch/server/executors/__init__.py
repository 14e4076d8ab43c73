"""Where runs execute: the executor interface and its implementations."""

from .base import Executor, ExitRecord, RunSpec

__all__ = ["Executor", "ExitRecord", "RunSpec"]
