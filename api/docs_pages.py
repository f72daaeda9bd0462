"""Static files and the interactive API docs (/docs, /redoc), served from this package.

FastAPI's own docs pages load Swagger UI, ReDoc, a favicon and Google Fonts from the internet;
these load the copies vendored under api/static/vendor/ (see its README) so the docs work
offline. Later web pages share the same /static mount."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR: Final = Path(__file__).resolve().with_name("static")
STATIC_PATH: Final = "/static"
SWAGGER_JS: Final = "vendor/swagger-ui/swagger-ui-bundle.js"
SWAGGER_CSS: Final = "vendor/swagger-ui/swagger-ui.css"
FAVICON: Final = "vendor/swagger-ui/favicon-32x32.png"
REDOC_JS: Final = "vendor/redoc/redoc.standalone.js"

router = APIRouter(include_in_schema=False)


def _prefix(request: Request) -> str:
    # Root-relative links that also work behind a proxy mounting the API under a path.
    root_path: str = request.scope.get("root_path", "")
    return root_path.rstrip("/")


def _static(request: Request, path: str) -> str:
    return f"{_prefix(request)}{STATIC_PATH}/{path}"


def _openapi_url(request: Request) -> str:
    return f"{_prefix(request)}{request.app.openapi_url}"


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=_openapi_url(request),
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=_static(request, SWAGGER_JS),
        swagger_css_url=_static(request, SWAGGER_CSS),
        swagger_favicon_url=_static(request, FAVICON),
        # Swagger UI would otherwise send the spec to an online validator for its badge.
        swagger_ui_parameters={"validatorUrl": None},
    )


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(
        openapi_url=_openapi_url(request),
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=_static(request, REDOC_JS),
        redoc_favicon_url=_static(request, FAVICON),
        with_google_fonts=False,
    )


def install_docs(app: FastAPI) -> None:
    """Mount /static and add /docs and /redoc (create the app with docs_url=None, redoc_url=None)."""
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(router)
