"""The browser tests' fixtures (defined with the first of them, in test_snippet.py): Chromium, a
fresh browser context per test, and a shop (a site and a running gateway) for it."""

from tests.browser.test_snippet import browser, context, shop

__all__ = ["browser", "context", "shop"]
