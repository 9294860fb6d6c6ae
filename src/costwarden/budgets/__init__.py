"""Budget files: loading, validation, and the threshold rules that raise alerts."""

from costwarden.budgets.loader import load_budgets, parse_budgets

__all__ = ["load_budgets", "parse_budgets"]
