"""Tools for end-to-end tests and benchmarks: stand-ins for the helpdesks the service calls."""
