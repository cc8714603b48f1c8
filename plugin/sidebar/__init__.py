"""The ticket sidebar: the signed launch, the banner and its cards, and the caches they read."""
