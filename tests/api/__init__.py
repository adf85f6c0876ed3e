"""The app over HTTP against a real Redis: in-process (ASGI) or served by uvicorn."""
