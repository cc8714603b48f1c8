"""Build and validate the helpdesk app packages offline."""
