// A WebSocket stand-in the tests drive by hand: they play the server.
"use strict";

class FakeWebSocket {
  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.readyState = 0; // CONNECTING
    this.sent = [];
    this.closedWith = null;
    this._answered = new WeakSet();
    this._listeners = {};
    FakeWebSocket.instances.push(this);
  }

  addEventListener(type, listener) {
    (this._listeners[type] = this._listeners[type] || []).push(listener);
  }

  send(text) {
    if (this.readyState !== 1) throw new Error("InvalidStateError: socket is not open");
    this.sent.push(JSON.parse(text));
  }

  // Like a browser, close() only starts the closing handshake; the test
  // decides whether and when the close event comes (serverClose()).
  close(code, reason) {
    this.closedWith = { code, reason };
    this.readyState = 2; // CLOSING
  }

  // ---- the server's side

  accept() {
    this.readyState = 1;
    this._fire("open", {});
  }

  reply(message) {
    this._fire("message", { data: typeof message === "string" ? message : JSON.stringify(message) });
  }

  /** The connection dies (server killed, network gone): close code 1006. */
  drop(code = 1006) {
    this.readyState = 3;
    this._fire("close", { code, reason: "", wasClean: false });
  }

  /** Frames of one type the client sent, oldest first. */
  sentOf(type) {
    return this.sent.filter((frame) => frame.type === type);
  }

  /** Answer every subscribe frame not answered yet as the server would. */
  acceptSubscribes(deny = () => false) {
    for (const frame of this.sentOf("subscribe")) {
      if (this._answered.has(frame)) continue;
      this._answered.add(frame);
      const group = typeof frame.data === "string" ? frame.data : frame.data.group || `${frame.data.type}-${frame.data.id}`;
      if (deny(group)) {
        this.reply({ id: frame.id, type: "subscribe", error: `Permission denied for group '${group}'.` });
      } else {
        this.reply({ id: frame.id, type: "subscribe", data: { group } });
      }
    }
  }

  _fire(type, event) {
    for (const listener of this._listeners[type] || []) listener(event);
  }
}

FakeWebSocket.instances = [];
FakeWebSocket.latest = () => FakeWebSocket.instances[FakeWebSocket.instances.length - 1];
FakeWebSocket.reset = () => {
  FakeWebSocket.instances = [];
};

module.exports = { FakeWebSocket };
