"""The operations' handlers, bound by the specs' operationIds, and what they reach through a request."""
