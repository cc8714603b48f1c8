"""Domain logic: pure Python, no Flask, no HTTP, no database."""
