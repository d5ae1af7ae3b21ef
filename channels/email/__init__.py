"""Email: IMAP intake with IDLE and a persisted UID cursor, parser, threading, SMTP replies."""

from channels.email.channel import EmailChannel

__all__ = ["EmailChannel"]
