"""The semantic tier (see model.py)."""
