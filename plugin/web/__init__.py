"""Web surfaces: one blueprint per surface, thin, calling the domain."""
