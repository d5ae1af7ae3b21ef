"""Repair dispatch: from "my XK-8800 is broken" to a ticket, an engineer and an ETA."""
