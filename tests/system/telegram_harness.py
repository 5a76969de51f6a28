"""A real daemon (subprocess) with its Telegram pointed at the fake Bot API server, and the
operator's side of it: the bot's commands, the control socket, the notification outbox."""

import signal
import sqlite3
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conftest import subprocess_env
from daemon_harness import NotifySocket, daemon, notify_socket, wait_until
from fakes.telegram_server import SentMessage, ThreadedTelegram

from paper_trader.interfaces.control_socket import request, socket_path
from paper_trader.interfaces.notify.render import POSSIBLE_REPEAT

CHAT, GROUP, OPERATOR, STRANGER = 111, -1001234567890, 111, 999

# One notification channel's deliveries with their outbox rows, oldest row first.
_DELIVERIES = """
SELECT o.id, o.kind, o.priority, o.created_at_ms, o.message, d.status, d.message_ids,
       d.folded, d.possible_repeat
FROM notification_outbox o JOIN notification_deliveries d ON d.outbox_id = o.id
WHERE d.channel = ? ORDER BY o.id
"""
RANK = {"critical": 0, "high": 1, "normal": 2, "low": 3}


@dataclass(frozen=True, slots=True)
class Delivery:
    """An outbox row's delivery to one chat, as the daemon recorded it."""

    id: int
    kind: str
    priority: str
    created_at_ms: int
    message: str
    status: str
    message_ids: tuple[int, ...]
    folded: bool
    possible_repeat: bool

    @property
    def order(self) -> tuple[int, int, int]:
        """Return where the notifier serves it: by priority, then age."""
        return RANK[self.priority], self.created_at_ms, self.id


class Daemon:
    """A running daemon with Telegram pointed at the fake, and the operator's side of it."""

    def __init__(
        self,
        tg: ThreadedTelegram,
        process: "subprocess.Popen[str]",
        db: Path,
        notify: NotifySocket,
    ) -> None:
        self.tg, self.process, self.db, self.notify = tg, process, db, notify
        self.killed = False

    def ask(self, text: str, *, chat_id: int = CHAT, **kw: Any) -> list[Any]:
        """Send a command as the operator; return the bot's answer (the messages quoting it)."""
        asked = self.tg.send_command(chat_id, kw.pop("user_id", OPERATOR), text, **kw)
        wait_until(
            self.process, lambda: bool(self.replies(chat_id, asked)), f"an answer to {text}", 30
        )
        return self.replies(chat_id, asked)

    def replies(self, chat_id: int, asked: int) -> list[Any]:
        """Return the messages that answer message ``asked`` (notifications share the chat)."""
        return [m for m in self.tg.delivered(chat_id) if m.reply_to == asked]

    def press(self, message_id: int, data: str, *, stale: bool = False) -> str:
        """Press a button of the bot's message; return the callback's answer text."""
        query = self.tg.press_button(CHAT, OPERATOR, message_id, data, stale=stale)
        wait_until(self.process, lambda: query in self.tg.answered_callbacks, "the answer", 30)
        return str(self.tg.answered_callbacks[query].get("text", ""))

    def rows(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        """Run a read-only query on the daemon's database."""
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as conn:
            return conn.execute(sql, params).fetchall()

    def command(self, command: str, **fields: str) -> dict[str, Any]:
        """Send one request over the control socket (as the CLI does); it must succeed."""
        answer = request(socket_path(self.db), {"command": command, **fields})
        assert answer["ok"] is True, answer
        return answer

    def deliveries(self, chat_id: int = CHAT) -> list[Delivery]:
        """Return every outbox row's delivery to ``chat_id``, oldest row first."""
        return [
            Delivery(
                id=row[0],
                kind=row[1],
                priority=row[2],
                created_at_ms=row[3],
                message=row[4],
                status=row[5],
                message_ids=tuple(int(m) for m in row[6].split(",") if m),
                folded=bool(row[7]),
                possible_repeat=bool(row[8]),
            )
            for row in self.rows(_DELIVERIES, (f"telegram:{chat_id}",))
        ]

    def kill(self) -> None:
        """``kill -9`` the daemon and wait until it is gone."""
        self.killed = True
        self.process.kill()
        self.process.wait(timeout=30)


def notices(tg: ThreadedTelegram, chat_id: int = CHAT) -> list[SentMessage]:
    """Return the notifier's messages to ``chat_id`` (the bot's answers quote a command)."""
    return [m for m in tg.delivered(chat_id) if m.reply_to is None]


def notifier_sends(tg: ThreadedTelegram, chat_id: int = CHAT) -> list[Any]:
    """Return the notifier's ``sendMessage`` calls to ``chat_id``, answered or not."""
    return [
        c
        for c in tg.calls_to("sendMessage")
        if c.chat_id == chat_id and "reply_parameters" not in c.params
    ]


def delivered_once(rows: Sequence[Delivery], messages: Sequence[SentMessage]) -> list[Delivery]:
    """Assert each row arrived in its own message or folded in one with others, and that
    nothing else arrived but the earlier copy of a possible repeat; return the rows in the
    order their messages arrived."""
    by_id = {m.message_id: m for m in messages}
    claimed: dict[int, list[Delivery]] = {}
    for row in rows:
        assert row.status == "sent", row
        assert row.message_ids, row
        for message_id in row.message_ids:
            claimed.setdefault(message_id, []).append(row)
    assert set(claimed) <= set(by_id), "a message recorded as sent never arrived"
    for message_id, owners in claimed.items():
        text = by_id[message_id].text
        if len(owners) > 1:
            assert all(r.folded for r in owners), owners
            assert f"\u00d7{len(owners)}" in text or f"{len(owners)} more" in text, text
        else:
            assert owners[0].message.splitlines()[0] in text, (owners[0], text)
    repeats = [by_id[i].text for r in rows if r.possible_repeat for i in r.message_ids]
    twice = [by_id[i].text for i in sorted(set(by_id) - set(claimed))]
    assert all(f"{POSSIBLE_REPEAT}{text}" in repeats for text in twice), twice
    assert len(twice) <= len(repeats)
    return sorted(rows, key=lambda r: (r.message_ids[0], r.id))


@contextmanager
def telegram_daemon(
    tmp_path: Path,
    tg: ThreadedTelegram,
    market: Mapping[str, str],
    *,
    chats: Sequence[int] = (CHAT, GROUP),
    **settings: str,
) -> Iterator[Daemon]:
    """Run the daemon on ``tmp_path``'s database until it is ready; stop it with SIGTERM
    after (exit 0), unless the test killed it."""
    with notify_socket() as notify:
        env = subprocess_env(
            tmp_path,
            NOTIFY_SOCKET=notify.path,
            TELEGRAM_BOT_TOKEN=tg.token,
            TELEGRAM_CHAT_ID=",".join(map(str, chats)),
            TELEGRAM_ALLOWED_USERS=str(OPERATOR),
            TELEGRAM_API_URL=tg.api_url,
            **market,
            **settings,
        )
        with daemon(env, output=tmp_path / "daemon.out") as process:
            notify.wait_for("READY=1", timeout=60)
            running = Daemon(tg, process, tmp_path / "paper_trader.db", notify)
            yield running
            if not running.killed:
                process.send_signal(signal.SIGTERM)
                assert process.wait(timeout=30) == 0
