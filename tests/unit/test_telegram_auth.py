"""Who may command, and single-use confirmations that expire (on an injected clock)."""

from paper_trader.interfaces.telegram.auth import Authorisation, Confirmations


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_only_listed_chats_may_command() -> None:
    """Closed by default: an empty list allows nobody, an unlisted chat is refused."""
    assert not Authorisation([]).allows(111, 111)
    auth = Authorisation([111, -100])
    assert auth.allows(111, 111)
    assert auth.allows(-100, 5)
    assert not auth.allows(222, 222)
    assert not auth.allows(None, 111)


def test_with_allowed_users_only_they_may_command_in_an_allowed_chat() -> None:
    """TELEGRAM_ALLOWED_USERS narrows a group to its listed members."""
    auth = Authorisation([-100], [7])
    assert auth.allows(-100, 7)
    assert not auth.allows(-100, 8)
    assert not auth.allows(-100, None)
    assert not auth.allows(7, 7)


def test_a_confirmation_is_honoured_once() -> None:
    """The first redeem returns the command; the second nothing."""
    book = Confirmations(monotonic=Clock())
    token = book.issue("close", "BTCUSDT", 111, 111)
    pending = book.redeem(token, 111)
    assert pending is not None
    assert (pending.action, pending.argument, pending.user_id) == ("close", "BTCUSDT", 111)
    assert book.redeem(token, 111) is None
    assert len(book) == 0


def test_a_confirmation_expires_after_its_ttl() -> None:
    """At 60 s it is gone, just before it still works."""
    clock = Clock()
    book = Confirmations(monotonic=clock, ttl_s=60)
    early, late = book.issue("close", "all", 1, 1), book.issue("emergency_stop", "", 1, 1)
    clock.now += 59.9
    assert book.redeem(early, 1) is not None
    clock.now += 0.1
    assert book.redeem(late, 1) is None


def test_a_press_in_another_chat_is_not_honoured_and_spends_nothing() -> None:
    """Only the chat it was asked in can use a token; it stays usable there."""
    book = Confirmations(monotonic=Clock())
    token = book.issue("close", "all", 111, 111)
    assert book.redeem(token, 222) is None
    assert book.redeem("made-up", 111) is None
    assert book.redeem(token, 111) is not None


def test_outstanding_confirmations_are_bounded() -> None:
    """Past the capacity the oldest is forgotten."""
    book = Confirmations(monotonic=Clock(), capacity=2)
    first = book.issue("close", "a", 1, 1)
    book.issue("close", "b", 1, 1)
    book.issue("close", "c", 1, 1)
    assert len(book) == 2
    assert book.redeem(first, 1) is None
