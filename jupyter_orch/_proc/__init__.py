"""What runs outside the server: the run supervisor and the fork server (standard library only).

This folder is the one put on a supervisor's path: nothing else of the package is importable
there by a top-level name.
"""
