"""The WeChat Official Account API: the HTTP client (``client``)."""
