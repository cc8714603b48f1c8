"""Customer data: imports, the push API, Shopify, the stored profiles and their segments."""
