"""Who may do what in the console: four roles, checked per route."""

from __future__ import annotations

import enum


class Role(str, enum.Enum):
    ADMIN = "admin"  # everything, including users, API keys, channels and the audit log
    AGENT = "agent"  # the hand-off inbox and conversations
    MARKETER = "marketer"  # campaigns and aggregates; never a conversation's contents
    TRAINER = "trainer"  # labels what the bot missed (智能体训练师); never a whole conversation


ALL_ROLES = frozenset(Role)
STAFF = frozenset({Role.ADMIN, Role.AGENT})  # who reads and answers conversations
ADMINS = frozenset({Role.ADMIN})
MARKETING = frozenset({Role.ADMIN, Role.MARKETER})  # the marketers' workspace; never conversations
TRAINING = frozenset({Role.ADMIN, Role.TRAINER})  # the trainer's pages: missed questions, labels, corrected transcripts
