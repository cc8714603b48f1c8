"""Goodwill: the exception catalog and budgets, versioned rules, suggestions and the action log."""
