"""The dashboard: an ASGI app and its static page."""
