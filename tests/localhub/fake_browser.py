"""A stand-in web browser for sign-in tests: ``python fake_browser.py URL`` opens the URL
in the background as a browser would and returns at once (Python's ``webbrowser``, which
msal and azure-identity use, waits for the command it runs). It follows redirects and
submits the form a page auto-submits (``response_mode=form_post``), trusting the CA in
``LOCALHUB_CA``. Set ``BROWSER`` to run it.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import urllib.parse
import urllib.request
from html.parser import HTMLParser


class _Form(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form" and self.action is None:
            self.action = values.get("action", "")
        elif tag == "input" and values.get("name"):
            self.fields[values["name"]] = values.get("value", "")


def browse(url: str) -> None:
    context = ssl.create_default_context(cafile=os.environ["LOCALHUB_CA"])
    opener = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=context), urllib.request.ProxyHandler({})
    )
    with opener.open(url, timeout=30) as page:
        form = _Form()
        form.feed(page.read().decode("utf-8", "replace"))
        base = page.geturl()
    if form.action is not None:  # the page's script would submit it
        target = urllib.parse.urljoin(base, form.action)
        data = urllib.parse.urlencode(form.fields).encode()
        with opener.open(target, data=data, timeout=30) as answer:
            answer.read()


def main() -> int:
    if sys.argv[1] == "--now":
        browse(sys.argv[2])
        return 0
    subprocess.Popen([sys.executable, __file__, "--now", sys.argv[1]], start_new_session=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
