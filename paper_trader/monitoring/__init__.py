"""Health of the running daemon: components, process resources, event-loop lag."""
