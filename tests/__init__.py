"""The gateway's tests: unit/ (in-process logic), api/ (the app over HTTP on a real Redis),
process/ (real `gateway serve` processes), browser/ (real Chromium); shared helpers in support/,
shared fixtures in conftest.py."""
