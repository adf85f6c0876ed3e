"""Helpers the tests share, imported as `from tests.support.<module> import ...`; fixtures live
in tests/conftest.py."""
