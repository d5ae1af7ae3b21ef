"""Kefu's own Rasa components. Imported by Rasa's Python 3.10, never by the gateway."""
