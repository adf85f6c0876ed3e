"""In-process logic: no server, no Redis."""
