"""The HTTP layer: the server's protocol, the middleware a request passes, and the one place errors become responses."""
