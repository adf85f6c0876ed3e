"""The JS tracker in real headless Chromium against a real gateway process."""
