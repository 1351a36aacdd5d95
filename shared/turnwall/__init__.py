"""Turnwall: multi-turn session memory and session-aware prompt scanning for LLM apps."""

from __future__ import annotations

__version__ = "0.1.0"
