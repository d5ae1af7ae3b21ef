"""Small pieces the console (``admin``) and the customer portal (``portal``) share:
the fail-closed route table lookup, CSRF token checks, word tables, shipped assets.

Each web app keeps its own sessions' meaning, pages and routes; this package knows
nothing of either.
"""
