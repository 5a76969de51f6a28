"""The status feed: a WebSocket of the daemon\x27s state and events."""
