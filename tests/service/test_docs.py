"""Swagger UI and ReDoc come from the service itself: every script, style, icon and the
OpenAPI document their pages reference is served by the same server, none by a CDN."""

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest

from tests.support.api import Api

# Python's mimetypes gives .js either name, depending on the system's mime.types.
CONTENT_TYPES = {
    ".js": ("text/javascript", "application/javascript"),
    ".css": ("text/css",),
    ".png": ("image/png",),
    ".json": ("application/json",),
}


class References(HTMLParser):
    """Every URL an HTML page loads: script src, link href, img src, ReDoc's spec-url."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href", "img": "src", "redoc": "spec-url"}.get(tag)
        for name, value in attrs:
            if name == wanted and value:
                self.urls.append(value)


def references(html: str) -> list[str]:
    parser = References()
    parser.feed(html)
    # Swagger UI is handed its OpenAPI document in an inline script.
    return parser.urls + re.findall(r"""\burl: ['"]([^'"]+)['"]""", html)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_every_asset_from_the_service(api: Api, page: str) -> None:
    response = api.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert not re.search(r"\b(?:https?:)?//[\w.-]+", response.text), "a URL to another host"
    urls = references(response.text)
    assert any(urlsplit(url).path == "/openapi.json" for url in urls), urls
    assert len(urls) >= 3, urls  # the script, the favicon, the document (+ Swagger's CSS)
    for reference in urls:
        url = urljoin(api.base_url + page, reference)
        assert url.startswith(api.base_url + "/"), url
        asset = api.get(url.removeprefix(api.base_url))
        assert asset.status_code == 200, url
        suffix = re.search(r"\.\w+$", urlsplit(url).path)
        assert suffix and suffix[0] in CONTENT_TYPES, url
        assert asset.headers["content-type"].startswith(CONTENT_TYPES[suffix[0]]), (
            url,
            asset.headers["content-type"],
        )
        assert len(asset.content) > 100, url


def test_the_swagger_oauth2_redirect_page_is_served(api: Api) -> None:
    response = api.get("/docs/oauth2-redirect")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
