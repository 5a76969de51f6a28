"""Notifications: the outbox delivered to each Telegram chat and the webhook, by priority then age,
within caps (digests instead of drops), paced per chat, and retried until each is sent."""
