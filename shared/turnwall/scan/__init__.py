"""Prompt and response scanning with session context.

Pure code: text and a session's risk state in, an outcome and the new state out. No
HTTP, no storage; the service layer persists the state dict between turns.

    scanner = Scanner(profile="default")
    outcome, state = scanner.scan_input(text, state)
    outcome, state = scanner.scan_output(reply, state, prompt=system_prompt)
"""

from __future__ import annotations

from turnwall.scan.models import Match, ScanOutcome, SessionVerdict
from turnwall.scan.policy import PROFILES
from turnwall.scan.scanner import Scanner

__all__ = ["PROFILES", "Match", "ScanOutcome", "Scanner", "SessionVerdict"]
