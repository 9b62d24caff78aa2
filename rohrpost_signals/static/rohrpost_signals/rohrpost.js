/*
 * RohrpostClient: a dependency-free browser client for the rohrpost protocol
 * as rohrpost_signals speaks it (see docs/javascript.rst).
 *
 * - Every request gets a fresh numeric id; replies and errors settle the
 *   matching promise.
 * - subscribe()/unsubscribe() key subscriptions by the reply's data.group,
 *   and every subscribed group is subscribed again after a reconnect.
 * - A ping every `pingInterval` ms; no pong within `pingTimeout` ms means the
 *   connection is dead and is replaced.
 * - Lost connections are retried with exponential backoff and jitter.
 * - Resuming: per group the client remembers the last `seq` it delivered
 *   without a gap, subscribes again with `since` after a reconnect, delivers
 *   updates in `seq` order exactly once, and emits "resync-required" when the
 *   server can no longer replay what was missed.
 *
 * Load it with a <script> tag (it defines window.RohrpostClient) or require()
 * it (CommonJS; `import RohrpostClient from ".../rohrpost.js"` works in Node).
 */
(function (root, factory) {
  "use strict";
  var RohrpostClient = factory();
  if (typeof module === "object" && module && module.exports) {
    module.exports = RohrpostClient;
  } else {
    root.RohrpostClient = RohrpostClient;
  }
})(typeof globalThis !== "undefined" ? globalThis : this, function () {
  "use strict";

  var OPEN = 1;

  var DEFAULTS = {
    pingInterval: 5000, // ms between pings while connected; 0 turns pings off
    pingTimeout: 5000, // ms to wait for a pong before the connection counts as dead
    requestTimeout: 10000, // default timeout of call(); subscribe/unsubscribe have none
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
  var REMEMBERED_IDS = 1000;

  /** An error reply from the server, a request that timed out, or a closed client. */
  class RohrpostError extends Error {
    constructor(message, code, response) {
      super(message);
      this.name = "RohrpostError";
      this.code = code; // "server", "timeout", "closed" or "cancelled"
      this.response = response || null; // the whole error frame for code "server"
      this.id = response ? response.id : undefined;
      this.type = response ? response.type : undefined;
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

  /** The subscribe argument to remember: a `since` in it applies once only. */
  function withoutSince(args) {
    if (!args || typeof args !== "object" || !("since" in args)) return args;
    var copy = Object.assign({}, args);
    delete copy.since;
    return copy;
  }

  function clearGapTimer(entry) {
    if (entry.gapTimer !== null) clearTimeout(entry.gapTimer);
    entry.gapTimer = null;
  }

  /** A path such as "/ws/rohrpost/" becomes ws(s)://<this host>/ws/rohrpost/. */
  function resolveUrl(url) {
    if (typeof url !== "string" || url.charAt(0) !== "/" || typeof location === "undefined") return url;
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    return scheme + location.host + url;
  }

  class RohrpostClient {
    constructor(url, options) {
      this.url = resolveUrl(url);
      this.options = Object.assign({}, DEFAULTS, options || {});
      this.state = "idle"; // "connecting", "open", "waiting" (for a retry), "closed" (by close())
      this.attempt = 0; // failed connection attempts in a row: drives the backoff
      this.reconnects = 0; // connections opened after the first one
      this._listeners = new Map();
      this._socket = null;
      this._opened = false; // has any connection opened yet
      this._nextId = 1; // never reset, so a late reply cannot settle a newer request
      this._pending = new Map(); // id -> request waiting for its reply
      this._outbox = []; // requests waiting for an open connection
      this._expired = new Set(); // ids that timed out on this socket: their late replies are dropped
      // group -> {args, seq, held, ids, gapTimer}: the subscribe argument and
      // the resume state (see _onUpdate).
      this._subscriptions = new Map();
      this.duplicates = 0; // updates dropped because they had been delivered already
      this._retryTimer = null;
      this._pingTimer = null;
      if (this.options.autoConnect) this.connect();
    }

    // ------------------------------------------------------------------ API

    /** Open the connection (done by the constructor unless autoConnect is false). */
    connect() {
      if (this._socket || this.state === "connecting") return;
      this._clearRetry();
      var Socket = this.options.WebSocket || (typeof WebSocket !== "undefined" ? WebSocket : null);
      if (!Socket) throw new Error("RohrpostClient needs a WebSocket implementation");
      this.state = "connecting";
      var socket;
      try {
        socket = this.options.protocols ? new Socket(this.url, this.options.protocols) : new Socket(this.url);
      } catch (error) {
        this.state = "idle";
        this._emit("error", error);
        this._scheduleReconnect();
        return;
      }
      this._socket = socket;
      var self = this;
      socket.addEventListener("open", function () { self._onOpen(socket); });
      socket.addEventListener("message", function (event) { self._onMessage(socket, event); });
      socket.addEventListener("close", function (event) { self._onClose(socket, event); });
      // A failed socket also fires "close", which does the cleanup.
      socket.addEventListener("error", function () {});
    }

    /** Close for good: no reconnect; waiting requests fail with code "closed". */
    close(code, reason) {
      this.state = "closed";
      this._clearRetry();
      this._clearPing();
      var socket = this._socket;
      this._socket = null;
      if (socket) {
        try { socket.close(code || 1000, reason); } catch (error) { /* already closing */ }
      }
      this._failAll(this._drainPending().concat(this._outbox.splice(0)), "closed");
      this._subscriptions.forEach(function (entry) { clearGapTimer(entry); });
      this._subscriptions.clear();
      this._emit("closed", { code: code || 1000, reason: reason || "", wasClean: true });
    }

    /**
     * Join a group; resolves with the reply's data ({group: "...", seq: n}).
     * A group the client already follows is asked for with `since`, so that
     * nothing between the two subscriptions is lost.
     */
    subscribe(group) {
      var name = groupOf(group);
      var known = name !== null ? this._subscriptions.get(name) : undefined;
      var ownSince = group && typeof group === "object" && group.since !== undefined && group.since !== null;
      var data = known && !ownSince ? this._subscribeData(name, known, group) : group;
      return this._subscribeRequest(data, { retry: true });
    }

    /** The last seq of `group` delivered without a gap (null: none, or a server without seq). */
    lastSeq(group) {
      var entry = this._subscriptions.get(group);
      return entry ? entry.seq : null;
    }

    /** Leave a group; it is not subscribed again after a reconnect. */
    unsubscribe(group) {
      var name = groupOf(group);
      if (name !== null) this._forgetGroup(name);
      if (this.state !== "open") {
        // The server forgets a socket's groups with the socket; only a queued
        // subscribe for this group has to be called off.
        this._cancelQueuedSubscribes(name);
        return Promise.resolve({ group: name });
      }
      var self = this;
      return this._request("unsubscribe", group, {}).then(function (data) {
        if (data && typeof data.group === "string") self._forgetGroup(data.group);
        return data;
      });
    }

    _forgetGroup(name) {
      var entry = this._subscriptions.get(name);
      if (entry) clearGapTimer(entry);
      this._subscriptions.delete(name);
    }

    _cancelQueuedSubscribes(name) {
      var self = this;
      this._outbox.slice().forEach(function (request) {
        if (request.type === "subscribe" && groupOf(request.data) === name) {
          self._forget(request);
          if (request.timer !== null) clearTimeout(request.timer);
          request.reject(new RohrpostError("Unsubscribed before the subscription was confirmed.", "cancelled"));
        }
      });
    }

    /** Call any server handler; resolves with the reply's data. */
    call(type, data, options) {
      var timeout = options && options.timeout !== undefined ? options.timeout : this.options.requestTimeout;
      return this._request(type, data, { timeout: timeout });
    }

    /** The groups this client is subscribed to (and will subscribe to again). */
    groups() {
      return Array.from(this._subscriptions.keys());
    }

    /** "open", "connecting" or "closed", like the original client's socketState. */
    get socketState() {
      return this.state === "open" || this.state === "connecting" ? this.state : "closed";
    }

    on(event, listener) {
      if (!this._listeners.has(event)) this._listeners.set(event, []);
      this._listeners.get(event).push(listener);
      return this;
    }

    off(event, listener) {
      var list = this._listeners.get(event);
      if (list) {
        var index = list.indexOf(listener);
        if (index !== -1) list.splice(index, 1);
      }
      return this;
    }

    once(event, listener) {
      var self = this;
      function wrapper() {
        self.off(event, wrapper);
        return listener.apply(this, arguments);
      }
      return this.on(event, wrapper);
    }

    // ------------------------------------------------------------ requests

    _request(type, data, opts) {
      var self = this;
      if (this.state === "closed") {
        return Promise.reject(new RohrpostError("The client was closed.", "closed"));
      }
      return new Promise(function (resolve, reject) {
        var request = {
          id: self._nextId++,
          type: type,
          data: data,
          retry: !!opts.retry, // send again after a reconnect instead of failing
          internal: !!opts.internal,
          onReply: opts.onReply || null, // runs before any later frame is handled
          resolve: resolve,
          reject: reject,
          timer: null,
        };
        if (opts.timeout) {
          request.timer = setTimeout(function () {
            if (self._pending.has(request.id)) self._expired.add(request.id);
            self._forget(request);
            reject(new RohrpostError("No reply to '" + type + "' within " + opts.timeout + " ms.", "timeout"));
          }, opts.timeout);
        }
        if (self.state === "open") self._send(request);
        else self._outbox.push(request);
      });
    }

    _frame(request) {
      var frame = { id: request.id, type: request.type };
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
      var index = this._outbox.indexOf(request);
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
      var requests = Array.from(this._pending.values());
      this._pending.clear();
      return requests;
    }

    _failAll(requests, code) {
      requests.forEach(function (request) {
        if (request.timer !== null) clearTimeout(request.timer);
        request.reject(new RohrpostError("The connection closed before a reply came.", code));
      });
    }

    // ------------------------------------------------------------ socket

    _onOpen(socket) {
      if (socket !== this._socket) return;
      this.state = "open";
      var reconnected = this._opened;
      this._opened = true;
      if (reconnected) this.reconnects += 1;
      this._emit("open", { reconnected: reconnected });
      if (reconnected) this._resubscribe();
      // Requests made while there was no connection go out after the re-subscribes.
      var waiting = this._outbox.splice(0);
      for (var i = 0; i < waiting.length; i++) this._send(waiting[i]);
      this._schedulePing(socket);
    }

    _onMessage(socket, event) {
      if (socket !== this._socket) return;
      this.attempt = 0; // the server answers: the next loss starts the backoff afresh
      var message;
      try {
        message = JSON.parse(event.data);
      } catch (error) {
        this._emit("error", new RohrpostError("Could not decode a frame from the server.", "server"));
        return;
      }
      if (!message || typeof message !== "object") return;
      this._emit("message", message);
      if (message.type === "subscription-update") {
        this._onUpdate(message);
        return;
      }
      if (message.type === "resync-required" && !this._pending.has(message.id)) {
        this._onResync(message);
        return;
      }
      if (this._expired.delete(message.id)) return; // the caller already got a timeout
      var request = this._pending.get(message.id);
      if (request) {
        this._settle(request, message);
      } else if (message.error !== undefined && message.error !== null) {
        this._emit("error", new RohrpostError(String(message.error), "server", message));
      } else if (typeof message.type === "string") {
        // A message the server sent on its own (send_to_group with another type).
        this._emit(message.type, message.data, message);
      }
    }

    // ------------------------------------------------------------ resuming

    /** Send a subscribe whose reply sets up the group's resume state before any later frame. */
    _subscribeRequest(data, opts) {
      var self = this;
      var since = data && typeof data === "object" && typeof data.since === "number" ? data.since : undefined;
      opts.onReply = function (reply) { self._subscribed(data, reply, since); };
      return this._request("subscribe", data, opts);
    }

    _subscribed(args, reply, since) {
      var name = reply && typeof reply.group === "string" ? reply.group : groupOf(args);
      if (name === null) return;
      var entry = this._subscriptions.get(name);
      if (!entry) {
        entry = { args: withoutSince(args), seq: null, held: new Map(), ids: new Set(), gapTimer: null };
        this._subscriptions.set(name, entry);
      }
      if (!reply || typeof reply.seq !== "number") {
        // A server without sequence numbers cannot replay: behave as before,
        // but say so if this subscribe asked it to resume.
        entry.seq = null;
        entry.held.clear();
        clearGapTimer(entry);
        if (since !== undefined) this._emit("resync-required", { group: name, seq: null }, null);
        return;
      }
      if (entry.seq === null) {
        // Resuming from a seq the caller kept, or starting at the group's
        // current number: what came before this subscription is not missed.
        entry.seq = since !== undefined ? since : reply.seq;
        this._drain(name, entry);
      }
      // Otherwise the server replays what followed entry.seq next.
    }

    /**
     * Deliver each update once and, per group, in seq order. The resume point
     * (entry.seq) only moves over updates delivered without a gap; one that
     * comes early waits in entry.held for those before it, and if they do not
     * come within gapTimeout the client asks the server to replay them.
     */
    _onUpdate(message) {
      var data = message.data || {};
      var entry = typeof data.group === "string" ? this._subscriptions.get(data.group) : undefined;
      if (!entry || typeof data.seq !== "number") {
        this._deliver(message); // a server without seq, or a group the client does not follow
        return;
      }
      var seq = data.seq;
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
      entry.held.forEach(function (message, seq) {
        if (seq <= entry.seq) entry.held.delete(seq);
      });
      while (entry.held.has(entry.seq + 1)) {
        var next = entry.held.get(entry.seq + 1);
        entry.held.delete(entry.seq + 1);
        this._accept(entry, next);
      }
      if (entry.held.size === 0) clearGapTimer(entry);
      else this._watchGap(group, entry);
    }

    _watchGap(group, entry) {
      if (entry.gapTimer !== null) return;
      var self = this;
      entry.gapTimer = setTimeout(function () {
        entry.gapTimer = null;
        if (self._subscriptions.get(group) !== entry || entry.held.size === 0) return;
        // Not connected: the re-subscribe after the reconnect resumes anyway.
        if (self.state === "open") self._repair(group, entry);
      }, this.options.gapTimeout);
    }

    /** A missing update did not come: subscribe again with since, which replays it. */
    _repair(group, entry) {
      var self = this;
      this._subscribeRequest(this._subscribeData(group, entry), {}).then(
        function () { if (entry.held.size > 0) self._watchGap(group, entry); },
        function (error) {
          if (error.code === "closed") return; // the reconnect resumes
          self._forgetGroup(group);
          error.group = group;
          self._emit("error", error);
        }
      );
    }

    _onResync(message) {
      var data = message.data || {};
      var group = data.group;
      var seq = typeof data.seq === "number" ? data.seq : null;
      var entry = typeof group === "string" ? this._subscriptions.get(group) : undefined;
      if (entry) {
        entry.seq = seq;
        if (seq === null) entry.held.clear();
      }
      // Listeners reload first; held updates newer than seq follow.
      this._emit("resync-required", { group: group, seq: seq }, message);
      if (entry && entry.seq !== null) this._drain(group, entry);
    }

    _deliver(message) {
      var data = message.data || {};
      this._emit("subscription-update", data, message);
      if (typeof data.group === "string") this._emit(data.group, null, data);
    }

    _onClose(socket, event) {
      if (socket !== this._socket) return;
      this._socket = null;
      this._clearPing();
      this._expired.clear();
      var self = this;
      var failed = [];
      this._drainPending().forEach(function (request) {
        if (request.retry) self._outbox.push(request);
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
      try { socket.close(4000, reason); } catch (error) { /* already closing */ }
      this._onClose(socket, { code: 4000, reason: reason, wasClean: false });
    }

    // ------------------------------------------------------------ reconnect

    /** The wait before retry number `attempt` (0-based): capped exponential, equal jitter. */
    reconnectDelay(attempt) {
      var o = this.options;
      var ceiling = Math.min(o.maxReconnectDelay, o.reconnectDelay * Math.pow(o.reconnectFactor, attempt));
      return ceiling / 2 + o.random() * (ceiling / 2);
    }

    _scheduleReconnect() {
      if (this.state === "closed" || !this.options.reconnect) return;
      var delay = this.reconnectDelay(this.attempt);
      this.attempt += 1;
      this.state = "waiting";
      this._emit("reconnecting", { attempt: this.attempt, delay: delay });
      var self = this;
      this._retryTimer = setTimeout(function () {
        self._retryTimer = null;
        self.connect();
      }, delay);
    }

    _clearRetry() {
      if (this._retryTimer !== null) clearTimeout(this._retryTimer);
      this._retryTimer = null;
    }

    /** Subscribe again to every group after a reconnect; the server forgot them. */
    _resubscribe() {
      var self = this;
      var entries = Array.from(this._subscriptions.entries());
      if (entries.length === 0) {
        this._emit("resubscribed", { groups: [], failed: [], resumed: [] });
        return;
      }
      var resumed = [];
      var results = entries.map(function (entry) {
        var group = entry[0];
        var data = self._subscribeData(group, entry[1]);
        if (entry[1].seq !== null) resumed.push(group);
        // Not retried: if this connection drops too, the next one starts a new round.
        return self._subscribeRequest(data, {}).then(
          function () { return { group: group, ok: true }; },
          function (error) { return { group: group, ok: false, error: error }; }
        );
      });
      Promise.all(results).then(function (outcomes) {
        var ok = [];
        var failed = [];
        var cutShort = false;
        outcomes.forEach(function (outcome) {
          if (outcome.ok) {
            ok.push(outcome.group);
          } else if (outcome.error.code === "closed") {
            cutShort = true; // keep the group: the next connection subscribes again
          } else {
            self._forgetGroup(outcome.group);
            failed.push(outcome.group);
            outcome.error.group = outcome.group;
            self._emit("error", outcome.error);
          }
        });
        if (!cutShort) {
          self._emit("resubscribed", {
            groups: ok,
            failed: failed,
            resumed: resumed.filter(function (group) { return ok.indexOf(group) !== -1; }),
          });
        }
      });
    }

    /** The data of a subscribe for a group the client follows: with `since` once it has a seq. */
    _subscribeData(group, entry, args) {
      if (args === undefined) args = entry.args;
      if (entry.seq === null) return args;
      var data = args && typeof args === "object" ? Object.assign({}, args) : {};
      data.group = group;
      data.since = entry.seq;
      return data;
    }

    // ------------------------------------------------------------ keepalive

    _schedulePing(socket) {
      if (!this.options.pingInterval) return;
      var self = this;
      this._clearPing();
      this._pingTimer = setTimeout(function () {
        self._pingTimer = null;
        self._ping(socket);
      }, this.options.pingInterval);
    }

    _ping(socket) {
      if (socket !== this._socket || this.state !== "open") return;
      var self = this;
      this._emit("ping");
      this._request("ping", undefined, { timeout: this.options.pingTimeout, internal: true }).then(
        function () {
          self._emit("pong");
          self._schedulePing(socket);
        },
        function (error) {
          if (error.code === "timeout") self._drop(socket, "no pong");
        }
      );
    }

    _clearPing() {
      if (this._pingTimer !== null) clearTimeout(this._pingTimer);
      this._pingTimer = null;
    }

    // ------------------------------------------------------------ events

    _emit(event) {
      var list = this._listeners.get(event);
      if (!list || list.length === 0) return;
      var args = Array.prototype.slice.call(arguments, 1);
      list.slice().forEach(function (listener) {
        try {
          listener.apply(null, args);
        } catch (error) {
          // One broken listener must not stop the client or the other listeners.
          if (typeof console !== "undefined") console.error(error);
        }
      });
    }
  }

  RohrpostClient.RohrpostClient = RohrpostClient;
  RohrpostClient.RohrpostError = RohrpostError;
  RohrpostClient.groupOf = groupOf;
  RohrpostClient.DEFAULTS = DEFAULTS;
  RohrpostClient.default = RohrpostClient;
  return RohrpostClient;
});
