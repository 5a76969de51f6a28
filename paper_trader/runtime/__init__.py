"""What every async part runs on: service supervision, bounded channels, the event bus,
systemd notification, logging set-up, progress bars and versions."""
