"""Words of a question, for lexical matching: jieba for Chinese, plain words for English.

Product model numbers (XK-8800) stay one token whatever the language around them, and
English words are lower-cased with a plural ``s`` dropped, so "filters" meets "filter".
Punctuation and a handful of function words are dropped; how much any other word
counts is left to its inverse document frequency over the knowledge base.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from pathlib import Path

import jieba

MODEL_NUMBER = re.compile(r"[A-Za-z]{1,4}-?\d{2,5}[A-Za-z]?")
_LATIN = re.compile(r"[a-z][a-z0-9']*")
_HAN = re.compile(r"[\u3400-\u9fff]")
STOP_WORDS = frozenset(
    "的 了 吗 呢 吧 啊 呀 么 是 我 你 您 我们 你们 请问 请 一下 a an the is are do does i you my your to of "
    "for in on it be can how what me we our and or with this that".split()
)


class Words:
    """A tokenizer owning its jieba instance (thread-safe after :meth:`load`)."""

    def __init__(self, user_dict: Path | None = None) -> None:
        self._jieba = jieba.Tokenizer()
        self._user_dict = user_dict
        self._lock = threading.Lock()
        self._loaded = False

    def load(self) -> None:
        """Load jieba's dictionary (about a second; blocking: call it off the loop)."""
        with self._lock:
            if self._loaded:
                return
            jieba.setLogLevel(logging.WARNING)  # its dictionary-loading chatter is not ours to log
            self._jieba.initialize()
            if self._user_dict is not None and self._user_dict.exists():
                self._jieba.load_userdict(str(self._user_dict))
            self._loaded = True

    def tokens(self, text: str) -> list[str]:
        self.load()
        out: list[str] = []
        rest = text
        for m in MODEL_NUMBER.finditer(text):
            out.append(m.group(0).upper().replace("-", ""))
        rest = MODEL_NUMBER.sub(" ", text).lower()
        for piece in self._jieba.cut_for_search(rest):
            piece = piece.strip()
            if not piece or piece in STOP_WORDS:
                continue
            if _HAN.search(piece):
                out.append(piece)
            else:
                out.extend(_english(piece))
        return out


def _english(piece: str) -> Iterable[str]:
    for word in _LATIN.findall(piece):
        if word in STOP_WORDS:
            continue
        yield word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word
