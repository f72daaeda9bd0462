"""/docs and /redoc work offline: every asset they load is served by the API itself."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser

import httpx
import pytest
import pytest_asyncio

from api.app import create_app
from api.docs_pages import STATIC_DIR
from core.settings import Settings


class _Links(HTMLParser):
    """Every URL an HTML page makes the browser load or follow."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str]] = []  # (tag, url)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "spec-url") and value:
                self.urls.append((tag, value))


def _links(html: str) -> list[tuple[str, str]]:
    parser = _Links()
    parser.feed(html)
    # Swagger UI is told where the spec is inside its init script, not by an attribute.
    parser.urls += [("spec", url) for url in re.findall(r"url: '([^']+)'", html)]
    return parser.urls


@pytest_asyncio.fixture(loop_scope="session")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    # The docs need no database, storage or Temporal: no lifespan, nothing started.
    app = create_app(Settings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


EXPECTED_TYPES = {
    ".js": ("text/javascript", "application/javascript"),
    ".css": ("text/css",),
    ".png": ("image/png",),
    ".json": ("application/json",),
}


@pytest.mark.parametrize(
    ("page", "must_load"),
    [
        ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "openapi.json"}),
        ("/redoc", {"redoc.standalone.js", "favicon-32x32.png", "openapi.json"}),
    ],
)
async def test_docs_pages_load_only_local_assets(
    http: httpx.AsyncClient, page: str, must_load: set[str]
) -> None:
    response = await http.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    # No CDN, no Google Fonts, no online validator: nothing on the page names another host.
    assert "http://" not in html and "https://" not in html and "//fonts." not in html, html

    links = _links(html)
    assert {url.rsplit("/", 1)[-1] for _, url in links} >= must_load, links
    for tag, url in links:
        assert url.startswith("/") and not url.startswith("//"), (tag, url)
        asset = await http.get(url)
        assert asset.status_code == 200, url
        suffix = "." + url.rsplit(".", 1)[-1]
        content_type = asset.headers["content-type"].split(";")[0].strip()
        assert content_type in EXPECTED_TYPES[suffix], (url, content_type)
        assert len(asset.content) > 0


async def test_static_mount_is_general_and_refuses_escapes(http: httpx.AsyncClient) -> None:
    readme = await http.get("/static/vendor/README.md")
    assert readme.status_code == 200 and "swagger-ui-dist" in readme.text
    assert (await http.get("/static/vendor/nope.js")).status_code == 404
    assert (await http.get("/static/../app.py")).status_code == 404


def test_vendored_assets_carry_their_licences() -> None:
    vendor = STATIC_DIR / "vendor"
    for folder, files in {
        "swagger-ui": ("LICENSE", "NOTICE", "swagger-ui-bundle.js", "swagger-ui.css"),
        "redoc": ("LICENSE", "redoc.standalone.js"),
    }.items():
        for name in files:
            assert (vendor / folder / name).is_file(), f"{folder}/{name}"
    readme = (vendor / "README.md").read_text()
    assert "swagger-ui-dist" in readme and "5.35.0" in readme
    assert "redoc" in readme and "2.5.4" in readme


def test_the_docs_are_not_in_the_openapi_document() -> None:
    paths = create_app(Settings()).openapi()["paths"]
    assert not {"/docs", "/redoc"} & set(paths)


def test_the_assets_are_package_data() -> None:
    """An installed (non-editable) distribution carries every vendored file."""
    import fnmatch
    import tomllib

    root = STATIC_DIR.parents[1]
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["api"]
    files = [p.relative_to(STATIC_DIR.parent).as_posix() for p in STATIC_DIR.rglob("*") if p.is_file()]
    assert files
    for file in files:
        assert any(fnmatch.fnmatch(file, pattern) for pattern in patterns), file
