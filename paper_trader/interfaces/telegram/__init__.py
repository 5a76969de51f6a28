"""Telegram: the embedded bot (commands) and its text, auth and reply helpers.

PTB 22 returns ``RetryAfter.retry_after`` as an int with a deprecation warning unless
``PTB_TIMEDELTA`` is set, and then as a ``timedelta`` (reference §2.3); it reads the variable
at every access, so setting it here, before any part of this package uses PTB, gives the
daemon and the tests the same, warning-free behaviour.
"""

import os

os.environ["PTB_TIMEDELTA"] = "1"
