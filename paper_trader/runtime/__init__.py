"""Service supervision, bounded channels and systemd notification."""
