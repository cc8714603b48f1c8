"""The console: its shell, opened from the helpdesk, and who may use it."""
