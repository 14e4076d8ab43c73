"""The engine inside the Jupyter server: HTTP handlers, use cases, store, scheduling, runs."""
