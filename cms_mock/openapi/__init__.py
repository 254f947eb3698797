"""What is read from a spec: its routes, its schemas' validation, the list's query parameters, coverage laid over it."""
