"""Customer data in: orders and facts from imports, pushes and connectors."""
