"""Missed turns grouped by meaning, the most frequent first."""

from __future__ import annotations

from knowledge.encoder import UniversalSentenceEncoder
from knowledge.missed import MissedTurn
from knowledge.trainer import group_similar


def test_similar_sentences_group_together_largest_first(encoder: UniversalSentenceEncoder) -> None:
    texts = ["今天天气怎么样", "发票怎么开", "怎么开发票？", "how do I get an invoice", "明天天气如何", "发票怎么开"]
    turns = [MissedTurn(reason="fallback" if i % 2 else "out_of_scope", text=t, language="zh", conversation=f"c{i}")
             for i, t in enumerate(texts)]
    groups = group_similar(turns, encoder.encode_blocking(texts))
    assert [g.size for g in groups] == [4, 2]
    invoice, weather = groups
    assert invoice.example == "发票怎么开" and invoice.texts[0] == "发票怎么开"  # said twice
    assert set(invoice.texts) == {"发票怎么开", "怎么开发票？", "how do I get an invoice"}
    assert set(weather.texts) == {"今天天气怎么样", "明天天气如何"}
    assert dict(invoice.reasons) == {"fallback": 3, "out_of_scope": 1}
