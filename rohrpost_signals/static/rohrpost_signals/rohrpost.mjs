/*
 * RohrpostClient: a dependency-free browser client for the rohrpost protocol
 * as rohrpost_signals speaks it (see docs/javascript.rst).
 *
 * This ES module is the one source of the client. rohrpost.js next to it
 * (a classic <script> that defines window.RohrpostClient, and a CommonJS
 * module) is generated from it by js/build.mjs; rohrpost.d.ts types both.
 *
 * - Every request gets a fresh numeric id; replies and errors settle the
 *   matching promise, or a timeout rejects it.
 * - subscribe()/unsubscribe() key subscriptions by the reply's data.group,
 *   and every subscribed group is subscribed again after a reconnect.
 * - A ping every `pingInterval` ms; no pong within `pingTimeout` ms means the
 *   connection is dead and is replaced.
 * - Lost connections are retried with exponential backoff and jitter.
 * - Resuming: per group the client remembers the history's epoch and the
 *   last `seq` it delivered without a gap, subscribes again with `since` and
 *   `epoch` after a reconnect, delivers updates in `seq` order exactly once,
 *   and emits "resync-required" when what was missed cannot be replayed.
 * - The client is an EventTarget: on() is a shorthand whose listeners all
 *   get (data, message) and which returns a function that removes them.
 */

const OPEN_STATES = ["open", "connecting"];

const DEFAULTS = {
  pingInterval: 5000, // ms between pings while connected; 0 turns pings off
  pingTimeout: 5000, // ms to wait for a pong before the connection counts as dead
  requestTimeout: 10000, // default timeout of call(), subscribe() and unsubscribe(); 0 = none
  reconnect: true,
  reconnectDelay: 1000, // the first retry waits between half of this and all of it
  maxReconnectDelay: 30000, // the delay doubles per failed attempt up to this cap
  reconnectFactor: 2,
  token: "", // sent as auth_jwt with every request, as the original rohrpost.js did
  protocols: undefined, // WebSocket subprotocols
  autoConnect: true,
  WebSocket: undefined, // a WebSocket constructor; defaults to the global one
  random: Math.random, // jitter source (tests pass a fixed one)
  gapTimeout: 2000, // ms an update may wait for an earlier seq before the client asks for a replay
};

// Per group, how many recent message ids are kept to recognise duplicates
// (the server's default history holds 1,000 messages per group).
const REMEMBERED_IDS = 1000;
// Per group, how many earlier epochs are remembered to drop their stragglers.
const RETIRED_EPOCHS = 8;

/** An error reply from the server, a request that timed out, or a closed client. */
class RohrpostError extends Error {
  constructor(message, code, response) {
    super(message);
    this.name = "RohrpostError";
    this.code = code; // "server", "timeout", "closed" or "cancelled"
    this.response = response || null; // the whole error frame for code "server"
    this.id = response ? response.id : undefined;
    this.type = response ? response.type : undefined;
    // The server's stable error code ("forbidden", "unauthenticated", ...).
    this.serverCode = response && typeof response.code === "string" ? response.code : null;
    this.group = undefined; // set when the error concerns one group
  }
}

/** What the client dispatches: `data` is the payload, `message` the frame it came in (or null). */
class RohrpostEvent extends Event {
  constructor(type, data, message) {
    super(type);
    this.data = data;
    this.message = message === undefined ? null : message;
  }
}

/** The group name a subscribe argument stands for, as the server derives it. */
function groupOf(args) {
  if (typeof args === "string") return args;
  if (args && typeof args === "object") {
    if (typeof args.group === "string") return args.group;
    if (typeof args.type === "string" && (typeof args.id === "number" || typeof args.id === "string")) {
      return args.type + "-" + args.id;
    }
  }
  return null;
}

/** The subscribe argument to remember: `since` and `epoch` in it apply once only. */
function withoutResume(args) {
  if (!args || typeof args !== "object" || !("since" in args || "epoch" in args)) return args;
  const copy = Object.assign({}, args);
  delete copy.since;
  delete copy.epoch;
  return copy;
}

function clearGapTimer(entry) {
  if (entry.gapTimer !== null) clearTimeout(entry.gapTimer);
  entry.gapTimer = null;
}

function timeoutOf(options, fallback) {
  return options && options.timeout !== undefined ? options.timeout : fallback;
}

/** A path such as "/ws/rohrpost/" becomes ws(s)://<this host>/ws/rohrpost/. */
function resolveUrl(url) {
  if (typeof url !== "string" || url.charAt(0) !== "/" || typeof location === "undefined") return url;
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  return scheme + location.host + url;
}

class RohrpostClient extends EventTarget {
  constructor(url, options) {
    super();
    this.url = resolveUrl(url);
    this.options = Object.assign({}, DEFAULTS, options || {});
    this.state = "idle"; // "connecting", "open", "waiting" (for a retry), "closed" (by close())
    this.attempt = 0; // failed connection attempts in a row: drives the backoff
    this.reconnects = 0; // connections opened after the first one
    this.duplicates = 0; // updates dropped because they had been delivered already
    this._listeners = new Map(); // event -> [{listener, wrapper}] added with on()/once()
    this._socket = null;
    this._opened = false; // has any connection opened yet
    this._nextId = 1; // never reset, so a late reply cannot settle a newer request
    this._pending = new Map(); // id -> request waiting for its reply
    this._outbox = []; // requests waiting for an open connection
    this._expired = new Set(); // ids that timed out on this socket: their late replies are dropped
    // group -> {args, seq, epoch, held, ids, gapTimer}: the subscribe
    // argument and the resume state (see _onUpdate).
    this._subscriptions = new Map();
    this._retryTimer = null;
    this._pingTimer = null;
    if (this.options.autoConnect) this.connect();
  }

  // ------------------------------------------------------------------ API

  /** Open the connection (done by the constructor unless autoConnect is false). */
  connect() {
    if (this._socket || this.state === "connecting") return;
    this._clearRetry();
    const Socket = this.options.WebSocket || (typeof WebSocket !== "undefined" ? WebSocket : null);
    if (!Socket) throw new Error("RohrpostClient needs a WebSocket implementation (the WebSocket option)");
    this.state = "connecting";
    let socket;
    try {
      socket = this.options.protocols ? new Socket(this.url, this.options.protocols) : new Socket(this.url);
    } catch (error) {
      this.state = "idle";
      this._emit("error", error);
      this._scheduleReconnect();
      return;
    }
    this._socket = socket;
    socket.addEventListener("open", () => this._onOpen(socket));
    socket.addEventListener("message", (event) => this._onMessage(socket, event));
    socket.addEventListener("close", (event) => this._onClose(socket, event));
    // A failed socket also fires "close", which does the cleanup.
    socket.addEventListener("error", () => {});
  }

  /** Close for good: no reconnect; waiting requests fail with code "closed". */
  close(code, reason) {
    this.state = "closed";
    this._clearRetry();
    this._clearPing();
    const socket = this._socket;
    this._socket = null;
    if (socket) {
      try {
        socket.close(code || 1000, reason);
      } catch (error) {
        /* already closing */
      }
    }
    this._failAll(this._drainPending().concat(this._outbox.splice(0)), "closed");
    this._subscriptions.forEach(clearGapTimer);
    this._subscriptions.clear();
    this._emit("closed", { code: code || 1000, reason: reason || "", wasClean: true });
  }

  /**
   * Join a group; resolves with the reply's data ({group, seq, epoch}).
   * A group the client already follows is asked for with `since`, so that
   * nothing between the two subscriptions is lost.
   */
  subscribe(group, options) {
    const name = groupOf(group);
    const known = name !== null ? this._subscriptions.get(name) : undefined;
    const ownSince = group && typeof group === "object" && group.since !== undefined && group.since !== null;
    const data = known && !ownSince ? this._subscribeData(name, known, group) : group;
    return this._subscribeRequest(data, {
      retry: true,
      timeout: timeoutOf(options, this.options.requestTimeout),
    });
  }

  /** The last seq of `group` delivered without a gap (null: none, or a server without seq). */
  lastSeq(group) {
    const entry = this._subscriptions.get(group);
    return entry ? entry.seq : null;
  }

  /** The epoch (history generation) the client has for `group`, or null. */
  epoch(group) {
    const entry = this._subscriptions.get(group);
    return entry ? entry.epoch : null;
  }

  /** Leave a group; it is not subscribed again after a reconnect. */
  unsubscribe(group, options) {
    const name = groupOf(group);
    if (name !== null) this._forgetGroup(name);
    if (this.state !== "open") {
      // The server forgets a socket's groups with the socket; only a queued
      // subscribe for this group has to be called off.
      this._cancelQueuedSubscribes(name);
      return Promise.resolve({ group: name });
    }
    const timeout = timeoutOf(options, this.options.requestTimeout);
    return this._request("unsubscribe", group, { timeout }).then((data) => {
      if (data && typeof data.group === "string") this._forgetGroup(data.group);
      return data;
    });
  }

  /** Call any server handler; resolves with the reply's data. */
  call(type, data, options) {
    return this._request(type, data, { timeout: timeoutOf(options, this.options.requestTimeout) });
  }

  /** The groups this client is subscribed to (and will subscribe to again). */
  groups() {
    return Array.from(this._subscriptions.keys());
  }

  /** "open", "connecting" or "closed", like the original client's socketState. */
  get socketState() {
    return OPEN_STATES.indexOf(this.state) !== -1 ? this.state : "closed";
  }

  /**
   * Listen to an event with a (data, message) listener; returns a function
   * that stops listening. A listener that throws is logged to the console
   * and does not stop the client or the other listeners.
   */
  on(event, listener) {
    return this._listen(event, listener, false);
  }

  /** Like on(), for the next event only. */
  once(event, listener) {
    return this._listen(event, listener, true);
  }

  /** Stop a listener added with on() or once(). */
  off(event, listener) {
    const list = this._listeners.get(event);
    if (!list) return this;
    const index = list.findIndex((item) => item.listener === listener);
    if (index !== -1) {
      this.removeEventListener(event, list[index].wrapper);
      list.splice(index, 1);
    }
    return this;
  }

  _listen(event, listener, once) {
    if (typeof listener !== "function") throw new TypeError("the listener must be a function");
    const item = { listener, wrapper: null };
    item.wrapper = (dispatched) => {
      if (once) this._unlisten(event, item);
      try {
        listener.call(this, dispatched.data, dispatched.message);
      } catch (error) {
        // One broken listener must not stop the client or the other listeners.
        if (typeof console !== "undefined") console.error(error);
      }
    };
    if (!this._listeners.has(event)) this._listeners.set(event, []);
    this._listeners.get(event).push(item);
    this.addEventListener(event, item.wrapper);
    return () => this._unlisten(event, item);
  }

  _unlisten(event, item) {
    const list = this._listeners.get(event);
    const index = list ? list.indexOf(item) : -1;
    if (index === -1) return;
    list.splice(index, 1);
    this.removeEventListener(event, item.wrapper);
  }

  // ------------------------------------------------------------ requests

  _request(type, data, opts) {
    if (this.state === "closed") {
      return Promise.reject(new RohrpostError("The client was closed.", "closed"));
    }
    return new Promise((resolve, reject) => {
      const request = {
        id: this._nextId++,
        type,
        data,
        retry: !!opts.retry, // send again after a reconnect instead of failing
        internal: !!opts.internal,
        onReply: opts.onReply || null, // runs before any later frame is handled
        resolve,
        reject,
        timer: null,
      };
      if (opts.timeout) {
        request.timer = setTimeout(() => {
          if (this._pending.has(request.id)) this._expired.add(request.id);
          this._forget(request);
          reject(new RohrpostError("No reply to '" + type + "' within " + opts.timeout + " ms.", "timeout"));
        }, opts.timeout);
      }
      if (this.state === "open") this._send(request);
      else this._outbox.push(request);
    });
  }

  _frame(request) {
    const frame = { id: request.id, type: request.type };
    if (this.options.token && !request.internal) frame.auth_jwt = this.options.token;
    if (request.data !== undefined) frame.data = request.data;
    return frame;
  }

  _send(request) {
    this._pending.set(request.id, request);
    try {
      this._socket.send(JSON.stringify(this._frame(request)));
    } catch (error) {
      // The socket is going away; its close event retries or fails the request.
    }
  }

  _forget(request) {
    this._pending.delete(request.id);
    const index = this._outbox.indexOf(request);
    if (index !== -1) this._outbox.splice(index, 1);
  }

  _settle(request, message) {
    this._forget(request);
    if (request.timer !== null) clearTimeout(request.timer);
    if (message.error !== undefined && message.error !== null) {
      request.reject(new RohrpostError(String(message.error), "server", message));
    } else {
      if (request.onReply) request.onReply(message.data);
      request.resolve(message.data);
    }
  }

  _drainPending() {
    const requests = Array.from(this._pending.values());
    this._pending.clear();
    return requests;
  }

  _failAll(requests, code) {
    requests.forEach((request) => {
      if (request.timer !== null) clearTimeout(request.timer);
      request.reject(new RohrpostError("The connection closed before a reply came.", code));
    });
  }

  _forgetGroup(name) {
    const entry = this._subscriptions.get(name);
    if (entry) clearGapTimer(entry);
    this._subscriptions.delete(name);
  }

  _cancelQueuedSubscribes(name) {
    this._outbox.slice().forEach((request) => {
      if (request.type === "subscribe" && groupOf(request.data) === name) {
        this._forget(request);
        if (request.timer !== null) clearTimeout(request.timer);
        request.reject(new RohrpostError("Unsubscribed before the subscription was confirmed.", "cancelled"));
      }
    });
  }

  // ------------------------------------------------------------ socket

  _onOpen(socket) {
    if (socket !== this._socket) return;
    this.state = "open";
    const reconnected = this._opened;
    this._opened = true;
    if (reconnected) this.reconnects += 1;
    this._emit("open", { reconnected });
    if (reconnected) this._resubscribe();
    // Requests made while there was no connection go out after the re-subscribes.
    this._outbox.splice(0).forEach((request) => this._send(request));
    this._schedulePing(socket);
  }

  _onMessage(socket, event) {
    if (socket !== this._socket) return;
    this.attempt = 0; // the server answers: the next loss starts the backoff afresh
    let message;
    try {
      message = JSON.parse(event.data);
    } catch (error) {
      this._emit("error", new RohrpostError("Could not decode a frame from the server.", "server"));
      return;
    }
    if (!message || typeof message !== "object") return;
    this._emit("message", message, message);
    if (message.type === "subscription-update") {
      this._onUpdate(message);
      return;
    }
    // Pushed by the server on its own; never a reply, whatever the id.
    if (message.type === "resync-required" && !this._pending.has(message.id)) {
      this._onResync(message);
      return;
    }
    if (message.type === "unsubscribed" && !this._pending.has(message.id)) {
      this._onUnsubscribed(message);
      return;
    }
    if (this._expired.delete(message.id)) return; // the caller already got a timeout
    const request = this._pending.get(message.id);
    if (request) {
      this._settle(request, message);
    } else if (message.error !== undefined && message.error !== null) {
      this._emit("error", new RohrpostError(String(message.error), "server", message), message);
    } else if (typeof message.type === "string") {
      // A message the server sent on its own (send_to_group with another type).
      this._emit(message.type, message.data, message);
    }
  }

  _onClose(socket, event) {
    if (socket !== this._socket) return;
    this._socket = null;
    this._clearPing();
    this._expired.clear();
    const failed = [];
    this._drainPending().forEach((request) => {
      if (request.retry) this._outbox.push(request);
      else failed.push(request);
    });
    this._failAll(failed, "closed");
    this.state = "idle";
    this._emit("closed", {
      code: event && event.code,
      reason: (event && event.reason) || "",
      wasClean: !!(event && event.wasClean),
    });
    this._scheduleReconnect();
  }

  /** Give up on a socket that stopped answering, without waiting for its close handshake. */
  _drop(socket, reason) {
    if (socket !== this._socket) return;
    try {
      socket.close(4000, reason);
    } catch (error) {
      /* already closing */
    }
    this._onClose(socket, { code: 4000, reason, wasClean: false });
  }

  // ------------------------------------------------------------ resuming

  /** Send a subscribe whose reply sets up the group's resume state before any later frame. */
  _subscribeRequest(data, opts) {
    const resume = data && typeof data === "object" ? data : {};
    const since = typeof resume.since === "number" ? resume.since : undefined;
    const epoch = typeof resume.epoch === "string" ? resume.epoch : null;
    opts.onReply = (reply) => this._subscribed(data, reply, since, epoch);
    return this._request("subscribe", data, opts);
  }

  _subscribed(args, reply, since, sentEpoch) {
    const name = reply && typeof reply.group === "string" ? reply.group : groupOf(args);
    if (name === null) return;
    let entry = this._subscriptions.get(name);
    if (!entry) {
      entry = {
        args: withoutResume(args),
        seq: null,
        epoch: null,
        retired: [], // epochs this group has left: their late updates are dropped
        held: new Map(),
        ids: new Set(),
        gapTimer: null,
      };
      this._subscriptions.set(name, entry);
    }
    if (!reply || typeof reply.seq !== "number") {
      // A server without sequence numbers cannot replay: behave as before,
      // but say so if this subscribe asked it to resume.
      entry.seq = null;
      entry.epoch = null;
      entry.held.clear();
      clearGapTimer(entry);
      if (since !== undefined) this._emit("resync-required", { group: name, seq: null, epoch: null }, null);
      return;
    }
    const epoch = typeof reply.epoch === "string" ? reply.epoch : null;
    if (entry.seq === null) {
      // Resuming from a seq the caller kept, or starting at the group's
      // current number: what came before this subscription is not missed.
      entry.seq = since !== undefined ? since : reply.seq;
      // With a kept since, the epoch it belongs to; a different current one
      // makes the server send resync-required next, which adopts it.
      entry.epoch = since !== undefined && sentEpoch !== null ? sentEpoch : epoch;
      this._drain(name, entry);
    } else if (entry.epoch === null) {
      entry.epoch = epoch;
    }
    // Otherwise the server replays what followed entry.seq next (or says
    // resync-required when it cannot).
  }

  /**
   * Deliver each update once and, per group, in seq order. The resume point
   * (entry.seq) only moves over updates delivered without a gap; one that
   * comes early waits in entry.held for those before it, and if they do not
   * come within gapTimeout the client asks the server to replay them.
   */
  _onUpdate(message) {
    const data = message.data || {};
    const entry = typeof data.group === "string" ? this._subscriptions.get(data.group) : undefined;
    if (!entry || typeof data.seq !== "number") {
      this._deliver(message); // a server without seq, or a group the client does not follow
      return;
    }
    if (typeof data.epoch === "string" && data.epoch !== entry.epoch) {
      if (entry.retired.indexOf(data.epoch) !== -1) {
        this.duplicates += 1; // sent before the history restarted: superseded
        return;
      }
      if (entry.epoch === null) {
        entry.epoch = data.epoch; // the first number this client hears of
      } else {
        this._epochChanged(data.group, entry, message);
        return;
      }
    }
    const seq = data.seq;
    if ((entry.seq !== null && seq <= entry.seq) || entry.held.has(seq) || entry.ids.has(message.id)) {
      this.duplicates += 1;
      return;
    }
    if (entry.seq !== null && seq > entry.seq + 1) {
      entry.held.set(seq, message);
      this._watchGap(data.group, entry);
      return;
    }
    this._accept(entry, message);
    this._drain(data.group, entry);
  }

  /**
   * An update numbered in another epoch: the history restarted (Redis
   * restored or failed over) and old and new numbers cannot be compared.
   * That is a resync: the page reloads the group; this update follows it.
   */
  _epochChanged(group, entry, message) {
    const data = message.data;
    this._restart(entry, data.epoch, data.seq - 1);
    this._emit("resync-required", { group, seq: entry.seq, epoch: entry.epoch }, message);
    if (this._subscriptions.get(group) !== entry) return; // a listener unsubscribed
    this._accept(entry, message);
  }

  /** Forget everything numbered in the old epoch and go on from (epoch, seq). */
  _restart(entry, epoch, seq) {
    if (entry.epoch !== null) {
      entry.retired.push(entry.epoch);
      if (entry.retired.length > RETIRED_EPOCHS) entry.retired.shift();
    }
    entry.epoch = epoch;
    entry.seq = seq;
    entry.held.clear();
    entry.ids.clear();
    clearGapTimer(entry);
  }

  _accept(entry, message) {
    entry.seq = message.data.seq;
    if (message.id !== undefined && message.id !== null) {
      entry.ids.add(message.id);
      if (entry.ids.size > REMEMBERED_IDS) entry.ids.delete(entry.ids.values().next().value);
    }
    this._deliver(message);
  }

  /** Deliver the held updates that now follow on without a gap. */
  _drain(group, entry) {
    entry.held.forEach((message, seq) => {
      if (seq <= entry.seq) entry.held.delete(seq);
    });
    while (entry.held.has(entry.seq + 1)) {
      const next = entry.held.get(entry.seq + 1);
      entry.held.delete(entry.seq + 1);
      this._accept(entry, next);
    }
    if (entry.held.size === 0) clearGapTimer(entry);
    else this._watchGap(group, entry);
  }

  _watchGap(group, entry) {
    if (entry.gapTimer !== null) return;
    entry.gapTimer = setTimeout(() => {
      entry.gapTimer = null;
      if (this._subscriptions.get(group) !== entry || entry.held.size === 0) return;
      // Not connected: the re-subscribe after the reconnect resumes anyway.
      if (this.state === "open") this._repair(group, entry);
    }, this.options.gapTimeout);
  }

  /** A missing update did not come: subscribe again with since, which replays it. */
  _repair(group, entry) {
    this._subscribeRequest(this._subscribeData(group, entry), {}).then(
      () => {
        if (entry.held.size > 0) this._watchGap(group, entry);
      },
      (error) => {
        if (error.code === "closed") return; // the reconnect resumes
        this._forgetGroup(group);
        error.group = group;
        this._emit("error", error, error.response);
      }
    );
  }

  _onResync(message) {
    const data = message.data || {};
    const group = data.group;
    const seq = typeof data.seq === "number" ? data.seq : null;
    const entry = typeof group === "string" ? this._subscriptions.get(group) : undefined;
    let epoch = typeof data.epoch === "string" ? data.epoch : null;
    if (entry) {
      if (epoch !== null && epoch !== entry.epoch) this._restart(entry, epoch, seq);
      entry.seq = seq;
      if (seq === null) entry.held.clear();
      if (epoch === null) epoch = entry.epoch;
    }
    // Listeners reload first; held updates newer than seq follow.
    this._emit("resync-required", { group, seq, epoch }, message);
    if (entry && entry.seq !== null && this._subscriptions.get(group) === entry) this._drain(group, entry);
  }

  /** The server ended a subscription itself (access withdrawn, logged out). */
  _onUnsubscribed(message) {
    const data = message.data || {};
    if (typeof data.group === "string") {
      this._forgetGroup(data.group);
      this._cancelQueuedSubscribes(data.group);
    }
    this._emit("unsubscribed", data, message);
  }

  _deliver(message) {
    const data = message.data || {};
    this._emit("subscription-update", data, message);
    if (typeof data.group === "string") this._emit(data.group, data, message);
  }

  // ------------------------------------------------------------ reconnect

  /** The wait before retry number `attempt` (0-based): capped exponential, equal jitter. */
  reconnectDelay(attempt) {
    const o = this.options;
    const ceiling = Math.min(o.maxReconnectDelay, o.reconnectDelay * Math.pow(o.reconnectFactor, attempt));
    return ceiling / 2 + o.random() * (ceiling / 2);
  }

  _scheduleReconnect() {
    if (this.state === "closed" || !this.options.reconnect) return;
    const delay = this.reconnectDelay(this.attempt);
    this.attempt += 1;
    this.state = "waiting";
    this._emit("reconnecting", { attempt: this.attempt, delay });
    this._retryTimer = setTimeout(() => {
      this._retryTimer = null;
      this.connect();
    }, delay);
  }

  _clearRetry() {
    if (this._retryTimer !== null) clearTimeout(this._retryTimer);
    this._retryTimer = null;
  }

  /** Subscribe again to every group after a reconnect; the server forgot them. */
  _resubscribe() {
    const entries = Array.from(this._subscriptions.entries());
    if (entries.length === 0) {
      this._emit("resubscribed", { groups: [], failed: [], resumed: [] });
      return;
    }
    const resumed = [];
    const results = entries.map(([group, entry]) => {
      const data = this._subscribeData(group, entry);
      if (entry.seq !== null) resumed.push(group);
      // No timeout and no retry: the connection closing ends it, and the
      // next connection starts a new round.
      return this._subscribeRequest(data, {}).then(
        () => ({ group, ok: true }),
        (error) => ({ group, ok: false, error })
      );
    });
    Promise.all(results).then((outcomes) => {
      const ok = [];
      const failed = [];
      let cutShort = false;
      outcomes.forEach((outcome) => {
        if (outcome.ok) {
          ok.push(outcome.group);
        } else if (outcome.error.code === "closed") {
          cutShort = true; // keep the group: the next connection subscribes again
        } else {
          this._forgetGroup(outcome.group);
          failed.push(outcome.group);
          outcome.error.group = outcome.group;
          this._emit("error", outcome.error, outcome.error.response);
        }
      });
      if (!cutShort) {
        this._emit("resubscribed", {
          groups: ok,
          failed,
          resumed: resumed.filter((group) => ok.indexOf(group) !== -1),
        });
      }
    });
  }

  /** The data of a subscribe for a group the client follows: with since (and epoch) once it has a seq. */
  _subscribeData(group, entry, args) {
    if (args === undefined) args = entry.args;
    if (entry.seq === null) return args;
    const data = args && typeof args === "object" ? Object.assign({}, args) : {};
    data.group = group;
    data.since = entry.seq;
    if (entry.epoch !== null) data.epoch = entry.epoch;
    return data;
  }

  // ------------------------------------------------------------ keepalive

  _schedulePing(socket) {
    if (!this.options.pingInterval) return;
    this._clearPing();
    this._pingTimer = setTimeout(() => {
      this._pingTimer = null;
      this._ping(socket);
    }, this.options.pingInterval);
  }

  _ping(socket) {
    if (socket !== this._socket || this.state !== "open") return;
    this._emit("ping");
    this._request("ping", undefined, { timeout: this.options.pingTimeout, internal: true }).then(
      () => {
        this._emit("pong");
        this._schedulePing(socket);
      },
      (error) => {
        if (error.code === "timeout") this._drop(socket, "no pong");
      }
    );
  }

  _clearPing() {
    if (this._pingTimer !== null) clearTimeout(this._pingTimer);
    this._pingTimer = null;
  }

  // ------------------------------------------------------------ events

  _emit(type, data, message) {
    this.dispatchEvent(new RohrpostEvent(type, data === undefined ? null : data, message));
  }

  // ------------------------------------------------------------ pages

  /**
   * A client for the page, from the data-rohrpost-* attributes of a script
   * element (what the {% rohrpost_client %} template tag renders): connects
   * to data-rohrpost-url, subscribes to the JSON list in
   * data-rohrpost-groups and stores the client as window[data-rohrpost-name].
   */
  static fromScript(script, options) {
    const url = script.getAttribute("data-rohrpost-url") || "/ws/rohrpost/";
    const groups = JSON.parse(script.getAttribute("data-rohrpost-groups") || "[]");
    const name = script.getAttribute("data-rohrpost-name") || "rohrpost";
    const client = new RohrpostClient(url, options);
    groups.forEach((group) => {
      client.subscribe(group).catch((error) => {
        error.group = groupOf(group);
        if (typeof console !== "undefined") console.warn("rohrpost: " + error.message, error);
        client._emit("error", error, error.response);
      });
    });
    if (name && typeof globalThis !== "undefined") globalThis[name] = client;
    return client;
  }
}

RohrpostClient.RohrpostClient = RohrpostClient;
RohrpostClient.RohrpostError = RohrpostError;
RohrpostClient.RohrpostEvent = RohrpostEvent;
RohrpostClient.groupOf = groupOf;
RohrpostClient.DEFAULTS = DEFAULTS;
RohrpostClient.default = RohrpostClient;

export { RohrpostClient, RohrpostError, RohrpostEvent, groupOf, DEFAULTS };
export default RohrpostClient;
