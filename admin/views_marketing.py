"""The marketers' workspace: every page's routes, in one list for the console."""

from __future__ import annotations

from admin import views_marketing_boards, views_marketing_customers, views_marketing_layers, views_marketing_rules, views_marketing_templates

MARKETING_ROUTES = (
    *views_marketing_customers.ROUTES,
    *views_marketing_layers.ROUTES,
    *views_marketing_templates.ROUTES,
    *views_marketing_rules.ROUTES,
    *views_marketing_boards.ROUTES,
)
