"""Renewal reminders, rules and the renewal chat skill."""
