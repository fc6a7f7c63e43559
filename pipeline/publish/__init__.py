"""Publishing channels. ``folder`` is always written; the WeChat channel builds on it."""
