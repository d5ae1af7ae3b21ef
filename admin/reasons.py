"""Hand-off reasons in the agent's language.

A skill records why a conversation waits for a human as a code with parameters and an
English sentence (:mod:`bot.conversation.handoff_reasons`). The console says it with
its own words for the code (``reason_<code>`` in :mod:`admin.i18n`) in the agent's
language; a record without a code (written before reasons had codes) or with a code
this console has no words for is shown as its sentence, as written, never hidden.
"""

from __future__ import annotations

from collections.abc import Mapping

from admin.i18n import LANGUAGES, TEXT, text

# Parameters whose values are codes themselves, worded under ``<prefix><value>``.
_WORDED_PARAMS = {"action": "renewal_action_"}


def reason_key(code: str) -> str:
    return f"reason_{code}"


def reason_in(sentence: str, code: str, params: Mapping[str, str], language: str) -> str:
    """The reason as an agent reading ``language`` sees it."""
    if not code or reason_key(code) not in TEXT:
        return sentence
    values = dict(params)
    for name, prefix in _WORDED_PARAMS.items():
        if name in values and prefix + values[name] in TEXT:
            values[name] = text(prefix + values[name], language)
    try:
        return text(reason_key(code), language).format(**values)
    except (KeyError, IndexError):  # parameters that do not fit the words: the sentence says it
        return sentence


def reason_words(sentence: str, code: str, params: Mapping[str, str]) -> dict[str, str]:
    """Every language's form, for live rows that each open page shows in its own."""
    return {language: reason_in(sentence, code, params, language) for language in LANGUAGES}
