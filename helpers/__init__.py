"""Helpers for the API Gateway WebSocket course: the local gateway, displays and checks.

Notebooks import this package; it is installed into the course's environment
(`pip install -e .`), so `import helpers` works from `notebooks/` and `solutions/` alike.
"""

__version__ = "0.1.0"
