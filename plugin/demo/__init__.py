"""The demo helpdesk: a local installation, its signing key and its sample data."""
