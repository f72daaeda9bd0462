"""The web pages (docs/architecture.md section 6): a customer portal, a reviewer console and a
supervisor dashboard, server-rendered from templates/pages/ on the same use cases as the JSON
API. Each module holds one area's routes; `web` renders, `session` signs people in."""

from __future__ import annotations

from fastapi import FastAPI

from api.pages import console, dashboard, oidc, portal, sign_in


def install_pages(app: FastAPI) -> None:
    for module in (sign_in, oidc, console, portal, dashboard):
        app.include_router(module.router)
