"""What the console (``admin``) and the customer portal (``portal``) share: errors, form
fields, server-side sessions and CSRF, the fail-closed route table, the page skeleton
and headers, settings, word tables and shipped assets.

Each web app keeps its own sessions' meaning, pages and routes; this package knows
nothing of either.
"""
