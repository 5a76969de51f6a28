"""What people read and command the daemon through: trade files, Telegram, the status feed."""
