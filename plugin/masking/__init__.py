"""Masking by role: the masks an admin sets per helpdesk role, and the viewer they apply to."""
