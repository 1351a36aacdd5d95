"""The semantic tier (see model.py)."""

from typing import Final

# How the tier says a turn pursues the aim of earlier turns (`SEM-SESSION-INTENT`); the
# scanner finds the reason by it when the lexical tier overrules that reading. Here, not
# in tier.py, so that the lexical profile need not import numpy to read it.
PURSUIT_REASON: Final = "pursues the harmful aim of earlier turns"
