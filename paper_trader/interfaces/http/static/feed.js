// The connection to the status feed: where it is (`/api/feed`, or the page's `?feed=`), its
// token (asked once, kept in localStorage, asked again when refused), reconnection with
// backoff and `?since=SEQ&run=RUN`, and the connected / stale / disconnected state.

const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 10_000;
const REFUSALS_BEFORE_ASKING_AGAIN = 5; // for a token that was accepted before
const TOKEN_KEY = "paper-trader.feed-token:";

export class FeedConnection {
  // hooks: message(m), state(name, detail), askToken(feedUrl, refused), resume() -> {since, run}
  constructor(hooks, { staleMs, override }) {
    this.hooks = hooks;
    this.staleMs = staleMs;
    this.override = override; // a ws:// URL from ?feed=, or null
    this.socket = null;
    this.feedUrl = null;
    this.tokenRequired = false;
    this.tokenAccepted = false;
    this.refusals = 0;
    this.attempt = 0;
    this.connects = 0;
    this.lastMessageAt = 0;
    this.state = "connecting";
    this.timer = null;
    setInterval(() => this.checkStale(), Math.max(250, Math.min(1000, staleMs / 4)));
  }

  start() { this.connect(); }

  // Use `token` from now on (the form's answer) and connect with it at once.
  useToken(token) {
    storeToken(this.feedUrl, token);
    this.tokenAccepted = false;
    this.refusals = 0;
    this.attempt = 0;
    clearTimeout(this.timer);
    this.timer = null;
    if (this.socket) {
      this.socket.onclose = null;
      this.socket.close();
      this.socket = null;
    }
    this.connect();
  }

  // Drop the current connection and start again with a fresh snapshot (no `since`).
  resync() {
    this.fresh = true;
    this.abandon("resynchronising");
  }

  // Give up on the current connection at once (a silent one may never finish closing).
  abandon(why) {
    const socket = this.socket;
    if (!socket) return;
    socket.onclose = socket.onmessage = null;
    socket.close();
    this.socket = null;
    this.setState("disconnected", why);
    this.connectSoon(this.nextDelay());
  }

  async connect() {
    this.timer = null;
    const generation = (this.generation = (this.generation || 0) + 1);
    const where = await this.locate();
    if (generation !== this.generation) return; // a newer attempt started meanwhile
    if (where === null) return this.connectSoon(this.nextDelay());
    this.feedUrl = where;
    const token = storedToken(where);
    if (this.tokenRequired && !token) {
      this.setState("disconnected", "the feed needs its token");
      this.hooks.askToken(where, false);
      return;
    }
    this.open(where, token);
  }

  open(where, token) {
    const url = new URL(where);
    const resume = this.fresh ? null : this.hooks.resume();
    this.fresh = false;
    if (resume && resume.run) {
      url.searchParams.set("since", String(resume.since));
      url.searchParams.set("run", resume.run);
    }
    if (token) url.searchParams.set("token", token);
    this.setState(this.state === "connecting" ? "connecting" : "disconnected", `connecting to ${where}`);
    let opened = false;
    const socket = new WebSocket(url.toString());
    this.socket = socket;
    socket.onopen = () => {
      opened = true;
      this.connects += 1;
      this.attempt = 0;
      this.refusals = 0;
      this.tokenAccepted = Boolean(token);
      this.lastMessageAt = Date.now();
      this.setState("connected", where);
    };
    socket.onmessage = (event) => this.receive(event.data);
    socket.onclose = (event) => {
      if (this.socket === socket) this.socket = null;
      this.closed(opened, event.code, token);
    };
  }

  receive(text) {
    this.lastMessageAt = Date.now();
    if (this.state === "stale") this.setState("connected", this.feedUrl);
    let message;
    try { message = JSON.parse(text); } catch { return; }
    if (!message || message.v !== 1) return; // a version this page does not know
    try {
      this.hooks.message(message);
    } catch (error) {
      console.error("status feed message not applied:", message.type, error);
    }
  }

  closed(opened, code, token) {
    const delay = this.nextDelay();
    const why = opened ? `closed (${code})` : "could not connect";
    this.setState("disconnected", `${why}; retrying in ${Math.round(delay / 100) / 10} s`);
    if (!opened && this.tokenRequired && token) {
      this.refusals += 1;
      if (!this.tokenAccepted || this.refusals >= REFUSALS_BEFORE_ASKING_AGAIN) {
        this.hooks.askToken(this.feedUrl, true);
      }
    }
    this.connectSoon(delay);
  }

  // Where to connect: the ?feed= override, or the port /api/feed names (null: not known yet).
  async locate() {
    let answer = null;
    try {
      const response = await fetch("/api/feed", { cache: "no-store" });
      if (response.ok) answer = await response.json();
    } catch { /* the daemon is not answering: retry below */ }
    if (answer) this.tokenRequired = Boolean(answer.token_required);
    if (this.override) return this.override;
    if (!answer || answer.port == null) {
      this.setState("disconnected", answer ? "the daemon serves no status feed (yet)" : "the daemon is not answering");
      return null;
    }
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.hostname}:${answer.port}/`;
  }

  connectSoon(delay) {
    if (this.timer !== null) return;
    this.timer = setTimeout(() => this.connect(), delay);
  }

  nextDelay() {
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** this.attempt);
    this.attempt += 1;
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  // Stale after `staleMs` without a message (the feed sends a heartbeat every 10 s); a
  // connection silent for twice that is dropped and made again.
  checkStale() {
    if (!this.socket || this.state === "disconnected" || this.state === "connecting") return;
    const silent = Date.now() - this.lastMessageAt;
    if (silent > 2 * this.staleMs) this.abandon(`no message for ${Math.round(silent / 1000)} s`);
    else if (silent > this.staleMs && this.state !== "stale") {
      this.setState("stale", `no message for ${Math.round(silent / 1000)} s`);
    }
  }

  setState(name, detail) {
    this.state = name;
    this.hooks.state(name, detail, this.connects);
  }
}

function storedToken(feedUrl) {
  try { return localStorage.getItem(TOKEN_KEY + feedUrl) || ""; } catch { return memory[feedUrl] || ""; }
}

function storeToken(feedUrl, token) {
  memory[feedUrl] = token;
  try { localStorage.setItem(TOKEN_KEY + feedUrl, token); } catch { /* kept in memory only */ }
}

const memory = {};
