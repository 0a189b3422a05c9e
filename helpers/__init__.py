"""Helpers for the API Gateway WebSocket course: the local gateway, displays and checks.

Notebooks import this package; it is installed into the course's environment
(`pip install -e .`), so `import helpers` works from `notebooks/` and `solutions/` alike.
"""

import sys

__version__ = "0.1.0"

# moto's API Gateway imports jsonschema, which, when the optional rfc3987_syntax is installed
# (JupyterLab's dependencies bring it), compiles an Earley grammar for IRIs at import: 3 s of
# CPU in every kernel, for a format check the course never uses. Without it jsonschema skips
# that one format, as its docs say it does for any missing optional format library.
sys.modules.setdefault("rfc3987_syntax", None)
