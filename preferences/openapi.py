"""An OpenAPI 3.0 description of the preferences API, built from its route table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.api import Handler, scope_of


def openapi(routes: Sequence[tuple[str, str, Handler]], *, prefix: str) -> dict[str, Any]:
    """The document for ``routes`` (method, path under ``prefix``, handler)."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path, handler in routes:
        params = [
            {"name": part[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
            for part in path.split("/")
            if part.startswith("{")
        ]
        op: dict[str, Any] = {
            "summary": (handler.__doc__ or "").strip().splitlines()[0] if handler.__doc__ else handler.__name__,
            "operationId": handler.__name__,
            "parameters": params,
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {}}},
                "4XX": {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            },
        }
        scope = scope_of(handler)
        if scope:
            op["security"] = [{"bearer": [scope]}]
            op["x-scope"] = scope
        if method in ("PUT", "PATCH", "POST"):
            op["requestBody"] = {"content": {"application/json": {"schema": {"type": "object"}}}}
        paths.setdefault(prefix + path, {})[method.lower()] = op
    return {
        "openapi": "3.0.3",
        "info": {"title": "Kefu preferences and notifications", "version": "1"},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {
                        "error": {
                            "type": "object",
                            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}},
                        }
                    },
                }
            },
        },
    }
