"""Renewals in chat: ``ask_renewal`` quotes the terms, ``renew_contract`` opens an
opportunity for the sales owner (with a DingTalk to-do); a rule that asks for legal
review or a person hands the conversation to an agent instead of quoting.

A customer the CRM does not know by this chat account is asked for a contract number
or the phone number on file first; one that matches goes to a colleague, who confirms
who they are before quoting (a number alone proves nothing), with the reference attached.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.conversation.handoff import Handoff
from bot.conversation.handoff_reasons import HandoffCode
from bot.routing import Reply, Skill, Turn
from bot.templates import Templates
from skills.renewal.service import Renewals


_CONTRACT = re.compile(r"(?<![A-Za-z0-9])(HT\d{8}|K-\d{4}-\d{3})(?![0-9])", re.I)
_PHONE = re.compile(r"(?<!\d)(1[3-9]\d{9})(?!\d)")

NO_CONTRACT = HandoffCode("renewal_no_contract", "renewal: no contract on file")
# A renewal rule's blocking action (skills.renewal.rules.ACTIONS) and the rule's name.
NEEDS_REVIEW = HandoffCode("renewal_review", "renewal {contract}: {action} ({rule})")
UNVERIFIED_CONTRACT = HandoffCode("renewal_unverified_contract", "renewal: unverified customer gives contract {contract} (CRM {found})")
UNVERIFIED_PHONE = HandoffCode("renewal_unverified_phone", "renewal: unverified customer gives phone {phone} (CRM {found})")


class RenewalSkill(Skill):
    name = "renewal"
    intents = frozenset({"ask_renewal", "renew_contract"})

    def __init__(self, templates: Templates, renewals: Renewals, handoff: Handoff) -> None:
        self.templates = templates
        self.renewals = renewals
        self.handoff = handoff

    def accepts(self, turn: Turn) -> bool:
        if turn.intent in self.intents:
            return True
        awaiting = turn.state is not None and turn.state.awaiting == self.name  # we asked for a contract or phone
        return awaiting and bool(_CONTRACT.search(turn.text) or _PHONE.search(turn.text))

    async def handle(self, turn: Turn) -> Sequence[Reply]:
        assert turn.state is not None
        lang = turn.language
        customer, contracts = await self.renewals.contracts_of(turn.state.customer)
        if customer is None:
            return await self._identify(turn)
        wanted = (turn.entity("contract_id") or "").upper()
        contract = next((c for c in contracts if str(c["_id"]).upper() == wanted), None) if wanted else None
        contract = contract or (contracts[0] if contracts else None)
        if contract is None:
            await self.handoff.to_queue(turn.state, NO_CONTRACT())
            return (Reply(text=self.templates.render("renewal_no_contract", lang)),)
        blocking = await self.renewals.needs_review(contract, customer)
        if blocking:
            first = blocking[0]
            await self.handoff.to_queue(turn.state, NEEDS_REVIEW(contract=contract["_id"], action=first["action"], rule=first.get("rule")))
            return (Reply(text=self.templates.render("renewal_review", lang, contract=contract, reason=blocking[0]["action"])),)
        quote = self.renewals.quote(contract)
        if turn.intent == "renew_contract":
            opp, created = await self.renewals.open_opportunity(contract, via=turn.message.channel, conversation=turn.state.conversation)
            return (Reply(text=self.templates.render("renewal_opportunity", lang, contract=contract, quote=quote, opp=opp, created=created)),)
        from preferences.render import local_time

        return (
            Reply(
                text=self.templates.render(
                    "renewal_quote", lang, contract=contract, quote=quote,
                    expires=local_time(float(contract["end"]), self.renewals.settings.timezone, "%Y-%m-%d"),
                    others=len(contracts) - 1,
                )
            ),
        )

    async def _identify(self, turn: Turn) -> Sequence[Reply]:
        assert turn.state is not None
        state, lang = turn.state, turn.language
        contract_no = (turn.entity("contract_id") or "") or (m.group(1) if (m := _CONTRACT.search(turn.text)) else "")
        phone = m.group(1) if (m := _PHONE.search(turn.text)) else ""
        if not contract_no and not phone:
            state.awaiting = self.name
            return (Reply(text=self.templates.render("renewal_ask_reference", lang)),)
        found = await self.renewals.find_by_reference(contract_no=contract_no.upper(), phone=phone)
        if found is None:
            state.awaiting = self.name
            return (Reply(text=self.templates.render("renewal_reference_unknown", lang)),)
        state.awaiting = ""
        reason = (
            UNVERIFIED_CONTRACT(contract=contract_no.upper(), found=found) if contract_no
            else UNVERIFIED_PHONE(phone=f"{phone[:3]}****{phone[-4:]}", found=found)
        )
        await self.handoff.to_queue(state, reason)
        return (Reply(text=self.templates.render("renewal_reference_found", lang)),)
