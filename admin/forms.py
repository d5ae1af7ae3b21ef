"""Reading console form fields: strings only, bounded, stripped."""

from __future__ import annotations

from aiohttp import web

from admin.errors import BadInput


async def fields(request: web.Request) -> dict[str, str]:
    form = await request.post()  # cached by aiohttp: the CSRF check read it already
    return {k: v for k, v in form.items() if isinstance(v, str)}


def one(data: dict[str, str], name: str, *, max_len: int = 4000, required: bool = True) -> str:
    value = data.get(name, "").strip()
    if required and not value:
        raise BadInput(f"{name} is required")
    if len(value) > max_len:
        raise BadInput(f"{name} may have at most {max_len} characters")
    if "\x00" in value or any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        raise BadInput(f"{name} holds characters that cannot be stored")
    return value
