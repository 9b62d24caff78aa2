// Unit tests of rohrpost_signals/static/rohrpost_signals/rohrpost.js.
// Run: node --test tests/js/*.test.js   (no npm install: node's built-in runner only)
"use strict";

const { test, beforeEach, afterEach, mock } = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");

const RohrpostClient = require(path.join(__dirname, "../../rohrpost_signals/static/rohrpost_signals/rohrpost.js"));
const { FakeWebSocket } = require("./fake-websocket.js");

// Let promise callbacks run (setImmediate is not faked).
const settle = () => new Promise((resolve) => setImmediate(resolve));

function client(options = {}) {
  return new RohrpostClient("ws://test/ws/rohrpost/", {
    WebSocket: FakeWebSocket,
    random: () => 0.5,
    pingInterval: 0,
    ...options,
  });
}

/** A client whose first socket is open. */
function connected(options) {
  const c = client(options);
  FakeWebSocket.latest().accept();
  return c;
}

/** Record every emission of the given events, in order: [event, data] or, with a frame, [event, data, frame]. */
function record(c, ...events) {
  const seen = [];
  for (const event of events) {
    c.on(event, (data, message) => seen.push(message === null ? [event, data] : [event, data, message]));
  }
  return seen;
}

beforeEach(() => {
  FakeWebSocket.reset();
  mock.timers.enable({ apis: ["setTimeout"] });
});

afterEach(() => {
  mock.timers.reset();
});

// ---------------------------------------------------------------- id matching

test("replies settle the request with the same id, in any order", async () => {
  const c = connected();
  const socket = FakeWebSocket.latest();
  const first = c.call("echo", { n: 1 });
  const second = c.call("echo", { n: 2 });
  const [a, b] = socket.sentOf("echo");
  assert.notEqual(a.id, b.id);
  assert.deepEqual(a, { id: a.id, type: "echo", data: { n: 1 } });

  socket.reply({ id: b.id, type: "echo", data: "second" });
  socket.reply({ id: a.id, type: "echo", data: "first" });
  assert.equal(await first, "first");
  assert.equal(await second, "second");
});

test("an error reply rejects only its own request", async () => {
  const c = connected();
  const socket = FakeWebSocket.latest();
  const good = c.call("echo", 1);
  const bad = c.call("nope", 2);
  const [badFrame] = socket.sentOf("nope");
  socket.reply({ id: badFrame.id, type: "nope", error: "No registered handler called 'nope'." });
  await assert.rejects(bad, (error) => {
    assert.ok(error instanceof RohrpostClient.RohrpostError);
    assert.equal(error.code, "server");
    assert.equal(error.message, "No registered handler called 'nope'.");
    assert.equal(error.id, badFrame.id);
    return true;
  });
  socket.reply({ id: socket.sentOf("echo")[0].id, type: "echo", data: "ok" });
  assert.equal(await good, "ok");
});

test("an error nobody waits for is emitted as an error event", () => {
  const c = connected();
  const seen = record(c, "error");
  FakeWebSocket.latest().reply({ id: null, type: "error", error: "Could not decode JSON message." });
  assert.equal(seen.length, 1);
  assert.equal(seen[0][1].message, "Could not decode JSON message.");
});

test("a subscription-update is never mistaken for a reply with the same id", async () => {
  const c = connected();
  const socket = FakeWebSocket.latest();
  const pending = c.call("echo", null);
  const { id } = socket.sentOf("echo")[0];
  const updates = record(c, "subscription-update");
  socket.reply({ id, type: "subscription-update", data: { type: "update", group: "g", object: { id: 1 } } });
  assert.equal(updates.length, 1);
  socket.reply({ id, type: "echo", data: "reply" });
  assert.equal(await pending, "reply");
});

test("a call without a reply times out, and its late reply is dropped", async () => {
  const c = connected({ requestTimeout: 1000 });
  const socket = FakeWebSocket.latest();
  const seen = record(c, "echo", "error");
  const pending = c.call("echo", null);
  mock.timers.tick(1000);
  await assert.rejects(pending, { code: "timeout" });
  socket.reply({ id: socket.sentOf("echo")[0].id, type: "echo", data: "late" });
  assert.deepEqual(seen, []);
});

test("ids keep growing across reconnects", async () => {
  const c = connected();
  c.call("echo", 1).catch(() => {});
  const before = FakeWebSocket.latest().sentOf("echo")[0].id;
  FakeWebSocket.latest().drop();
  mock.timers.tick(1000);
  FakeWebSocket.latest().accept();
  c.call("echo", 2).catch(() => {});
  assert.ok(FakeWebSocket.latest().sentOf("echo")[0].id > before);
});

test("requests made before the socket opens go out once it does", async () => {
  const c = client();
  const socket = FakeWebSocket.latest();
  const reply = c.call("echo", "early");
  assert.deepEqual(socket.sent, []);
  socket.accept();
  const [frame] = socket.sentOf("echo");
  assert.equal(frame.data, "early");
  socket.reply({ id: frame.id, type: "echo", data: "late enough" });
  assert.equal(await reply, "late enough");
});

// ------------------------------------------------- rohrpost.js message format

test("subscribe sends the rohrpost.js frame and keys the group by the reply", async () => {
  const c = connected({ token: "jwt-1" });
  const socket = FakeWebSocket.latest();
  const subscribed = c.subscribe({ type: "order", id: 5 });
  const [frame] = socket.sentOf("subscribe");
  assert.deepEqual(frame, { id: frame.id, type: "subscribe", auth_jwt: "jwt-1", data: { type: "order", id: 5 } });
  socket.reply({ id: frame.id, type: "subscribe", data: { group: "order-5" } });
  assert.deepEqual(await subscribed, { group: "order-5" });
  assert.deepEqual(c.groups(), ["order-5"]);
});

test("a refused subscription rejects with the server's message and is not kept", async () => {
  const c = connected();
  const socket = FakeWebSocket.latest();
  const subscribed = c.subscribe({ group: "board-9-cards" });
  socket.acceptSubscribes(() => true);
  await assert.rejects(subscribed, { code: "server", message: "Permission denied for group 'board-9-cards'." });
  assert.deepEqual(c.groups(), []);
});

test("updates are emitted as subscription-update and under their group", async () => {
  const c = connected();
  const socket = FakeWebSocket.latest();
  const subscribed = c.subscribe("card-3");
  socket.acceptSubscribes();
  await subscribed;
  const seen = record(c, "subscription-update", "card-3");
  const data = { type: "update", group: "card-3", object: { id: 3, title: "new", updated_fields: ["title"] } };
  socket.reply({ id: 8731, type: "subscription-update", data });
  assert.equal(seen.length, 2);
  assert.deepEqual(seen[0].slice(0, 2), ["subscription-update", data]);
  assert.equal(seen[0][2].id, 8731);
  // Under the group's name with the same (data, message) signature.
  assert.deepEqual(seen[1].slice(0, 2), ["card-3", data]);
  assert.equal(seen[1][2].id, 8731);
});

test("pings carry no data, and a pong schedules the next one", async () => {
  const c = connected({ pingInterval: 5000, pingTimeout: 2000 });
  const socket = FakeWebSocket.latest();
  const seen = record(c, "ping", "pong");
  mock.timers.tick(4999);
  assert.equal(socket.sentOf("ping").length, 0);
  mock.timers.tick(1);
  const [ping] = socket.sentOf("ping");
  assert.deepEqual(Object.keys(ping).sort(), ["id", "type"]);
  socket.reply({ id: ping.id, type: "pong" });
  await settle();
  mock.timers.tick(5000);
  assert.equal(socket.sentOf("ping").length, 2);
  assert.deepEqual(seen.map((entry) => entry[0]), ["ping", "pong", "ping"]);
  c.close();
});

test("no pong in time drops the connection and reconnects", async () => {
  const c = connected({ pingInterval: 5000, pingTimeout: 2000 });
  const socket = FakeWebSocket.latest();
  const seen = record(c, "closed", "reconnecting");
  mock.timers.tick(5000); // the ping goes out
  mock.timers.tick(2000); // and its pong never comes
  await settle();
  assert.equal(socket.closedWith.code, 4000);
  assert.equal(c.state, "waiting");
  assert.deepEqual(seen.map((entry) => entry[0]), ["closed", "reconnecting"]);
  // The dead socket's close event, if it ever comes, changes nothing.
  socket.drop();
  assert.equal(seen.length, 2);
  mock.timers.tick(1000);
  assert.equal(FakeWebSocket.instances.length, 2);
});

// ---------------------------------------------------------- reconnect backoff

test("the reconnect delay doubles per attempt up to the cap, with jitter", () => {
  const low = client({ random: () => 0, reconnectDelay: 1000, maxReconnectDelay: 8000, autoConnect: false });
  const high = client({ random: () => 1, reconnectDelay: 1000, maxReconnectDelay: 8000, autoConnect: false });
  assert.deepEqual([0, 1, 2, 3, 4, 10].map((n) => low.reconnectDelay(n)), [500, 1000, 2000, 4000, 4000, 4000]);
  assert.deepEqual([0, 1, 2, 3, 4, 10].map((n) => high.reconnectDelay(n)), [1000, 2000, 4000, 8000, 8000, 8000]);
});

test("failed connection attempts wait longer and longer", () => {
  const c = client({ random: () => 1, reconnectDelay: 1000, maxReconnectDelay: 4000 });
  const delays = [];
  c.on("reconnecting", ({ delay }) => delays.push(delay));
  for (const expected of [1000, 2000, 4000, 4000]) {
    const count = FakeWebSocket.instances.length;
    FakeWebSocket.latest().drop(); // the server is not there
    mock.timers.tick(expected - 1);
    assert.equal(FakeWebSocket.instances.length, count, "reconnected too early");
    mock.timers.tick(1);
    assert.equal(FakeWebSocket.instances.length, count + 1, "did not reconnect after the delay");
  }
  assert.deepEqual(delays, [1000, 2000, 4000, 4000]);
  assert.equal(c.attempt, 4);
});

test("the backoff starts afresh once a connection works again", () => {
  const c = client({ random: () => 1, reconnectDelay: 1000 });
  const delays = [];
  c.on("reconnecting", ({ delay }) => delays.push(delay));
  FakeWebSocket.latest().drop();
  mock.timers.tick(1000);
  FakeWebSocket.latest().drop();
  mock.timers.tick(2000);
  const socket = FakeWebSocket.latest();
  socket.accept();
  socket.reply({ id: 1, type: "hello" }); // the server answers
  socket.drop();
  assert.deepEqual(delays, [1000, 2000, 1000]);
});

test("jitter spreads the retries of many clients", () => {
  const randoms = [0.1, 0.9];
  const delays = randoms.map((r) => client({ random: () => r, autoConnect: false }).reconnectDelay(3));
  assert.notEqual(delays[0], delays[1]);
  for (const delay of delays) assert.ok(delay >= 4000 && delay <= 8000, `${delay} outside [4000, 8000]`);
});

test("close() stops reconnecting and fails what is waiting", async () => {
  const c = connected();
  const pending = c.call("echo", 1);
  c.close();
  await assert.rejects(pending, { code: "closed" });
  FakeWebSocket.latest().drop();
  mock.timers.tick(60000);
  assert.equal(FakeWebSocket.instances.length, 1);
  await assert.rejects(c.call("echo", 2), { code: "closed" });
});

// ------------------------------------------------------------- re-subscribe

async function subscribedClient(groups, options) {
  const c = connected(options);
  const replies = groups.map((group) => c.subscribe(group));
  FakeWebSocket.latest().acceptSubscribes();
  await Promise.all(replies);
  return c;
}

test("every group is subscribed again after a reconnect", async () => {
  const c = await subscribedClient([{ group: "board-1-cards" }, "card-7", { type: "order", id: 5 }]);
  const events = record(c, "open", "resubscribed", "subscription-update");
  FakeWebSocket.latest().drop();
  mock.timers.tick(1000);
  const socket = FakeWebSocket.latest();
  socket.accept();
  // Each group again, with the argument it was first subscribed with.
  assert.deepEqual(
    socket.sentOf("subscribe").map((frame) => frame.data),
    [{ group: "board-1-cards" }, "card-7", { type: "order", id: 5 }]
  );
  socket.acceptSubscribes();
  await settle();
  assert.deepEqual(events[0], ["open", { reconnected: true }]);
  assert.deepEqual(events[1], ["resubscribed", { groups: ["board-1-cards", "card-7", "order-5"], failed: [] , resumed: [] }]);
  assert.equal(c.reconnects, 1);

  const update = { type: "create", group: "board-1-cards", object: { id: 9 } };
  socket.reply({ id: 1, type: "subscription-update", data: update });
  assert.deepEqual(events[2][1], update);
});

test("a group the server now refuses is dropped and reported", async () => {
  const c = await subscribedClient(["board-1-cards", "board-2-cards"]);
  const events = record(c, "error", "resubscribed");
  FakeWebSocket.latest().drop();
  mock.timers.tick(1000);
  FakeWebSocket.latest().accept();
  FakeWebSocket.latest().acceptSubscribes((group) => group === "board-2-cards");
  await settle();
  assert.equal(events[0][0], "error");
  assert.equal(events[0][1].group, "board-2-cards");
  assert.deepEqual(events[1], ["resubscribed", { groups: ["board-1-cards"], failed: ["board-2-cards"] , resumed: [] }]);
  assert.deepEqual(c.groups(), ["board-1-cards"]);
});

test("a subscribe cut off by a drop is sent again; other calls fail", async () => {
  const c = connected();
  const subscribed = c.subscribe("card-1");
  const other = c.call("echo", 1);
  FakeWebSocket.latest().drop();
  await assert.rejects(other, { code: "closed" });
  mock.timers.tick(1000);
  const socket = FakeWebSocket.latest();
  socket.accept();
  assert.deepEqual(socket.sentOf("subscribe").map((frame) => frame.data), ["card-1"]);
  socket.acceptSubscribes();
  assert.deepEqual(await subscribed, { group: "card-1" });
});

test("a re-subscribe round cut short is redone on the next connection", async () => {
  const c = await subscribedClient(["card-1"]);
  const events = record(c, "resubscribed", "error");
  FakeWebSocket.latest().drop();
  mock.timers.tick(1000);
  FakeWebSocket.latest().accept();
  FakeWebSocket.latest().drop(); // gone again before answering
  await settle();
  mock.timers.tick(2000);
  const socket = FakeWebSocket.latest();
  socket.accept();
  assert.deepEqual(socket.sentOf("subscribe").map((frame) => frame.data), ["card-1"]);
  socket.acceptSubscribes();
  await settle();
  assert.deepEqual(events, [["resubscribed", { groups: ["card-1"], failed: [] , resumed: [] }]]);
});

test("an unsubscribed group is not subscribed again", async () => {
  const c = await subscribedClient(["card-1", "card-2"]);
  const left = c.unsubscribe("card-1");
  const socket = FakeWebSocket.latest();
  const [frame] = socket.sentOf("unsubscribe");
  assert.deepEqual(frame, { id: frame.id, type: "unsubscribe", data: "card-1" });
  socket.reply({ id: frame.id, type: "unsubscribe", data: { group: "card-1" } });
  assert.deepEqual(await left, { group: "card-1" });
  socket.drop();
  mock.timers.tick(1000);
  FakeWebSocket.latest().accept();
  assert.deepEqual(FakeWebSocket.latest().sentOf("subscribe").map((f) => f.data), ["card-2"]);
});

test("unsubscribing while offline calls off a queued subscribe", async () => {
  const c = client();
  const subscribed = c.subscribe("card-1");
  const left = c.unsubscribe("card-1");
  await assert.rejects(subscribed, { code: "cancelled" });
  assert.deepEqual(await left, { group: "card-1" });
  FakeWebSocket.latest().accept();
  assert.deepEqual(FakeWebSocket.latest().sent, []);
});

// ------------------------------------------------------------------ events

test("a listener that throws does not stop the others", () => {
  const c = connected();
  const logged = mock.method(console, "error", () => {});
  const seen = [];
  c.on("subscription-update", () => {
    throw new Error("broken listener");
  });
  c.on("subscription-update", (data) => seen.push(data.object.id));
  FakeWebSocket.latest().reply({ id: 1, type: "subscription-update", data: { type: "update", group: "g", object: { id: 4 } } });
  assert.deepEqual(seen, [4]);
  assert.equal(logged.mock.callCount(), 1);
  logged.mock.restore();
});

test("once() listens a single time and off() stops listening", () => {
  const c = connected();
  const seen = [];
  const listener = (data) => seen.push(["on", data.object.id]);
  c.once("subscription-update", (data) => seen.push(["once", data.object.id]));
  c.on("subscription-update", listener);
  const frame = (id) => ({ id, type: "subscription-update", data: { type: "update", group: "g", object: { id } } });
  FakeWebSocket.latest().reply(frame(1));
  c.off("subscription-update", listener);
  FakeWebSocket.latest().reply(frame(2));
  assert.deepEqual(seen, [["once", 1], ["on", 1]]);
});

test("a frame that is not JSON is reported, not thrown", () => {
  const c = connected();
  const seen = record(c, "error");
  FakeWebSocket.latest().reply("not json");
  assert.equal(seen.length, 1);
});

test("a path is resolved against the page's host", () => {
  global.location = { protocol: "https:", host: "example.test:8443" };
  try {
    assert.equal(client({ autoConnect: false }).url, "ws://test/ws/rohrpost/"); // absolute: kept
    assert.equal(new RohrpostClient("/ws/x/", { autoConnect: false }).url, "wss://example.test:8443/ws/x/");
  } finally {
    delete global.location;
  }
});
