"""Conversation core: per-conversation state, ordering, forms and the human hand-off."""
