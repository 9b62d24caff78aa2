// The ES module build (rohrpost.mjs, the client's one source): the API of
// the front-end package, epochs, server-ended subscriptions, and that the
// generated classic build is up to date and behaves the same.
// Run: node --test tests/js/
import { test, beforeEach, afterEach, mock } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import RohrpostDefault, {
  RohrpostClient,
  RohrpostError,
  RohrpostEvent,
  groupOf,
  DEFAULTS,
} from "../../rohrpost_signals/static/rohrpost_signals/rohrpost.mjs";
import fake from "./fake-websocket.js";

const { FakeWebSocket } = fake;
const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../..");
const require = createRequire(import.meta.url);

const GROUP = "order-5";

function connected(options = {}) {
  const c = new RohrpostClient("ws://test/ws/rohrpost/", {
    WebSocket: FakeWebSocket,
    random: () => 0.5,
    pingInterval: 0,
    ...options,
  });
  FakeWebSocket.latest().accept();
  return c;
}

function answer(socket, data, frame = socket.sentOf("subscribe").at(-1)) {
  socket.reply({ id: frame.id, type: frame.type, data });
  return frame;
}

let nextId = 5000;
function update(seq, epoch, group = GROUP) {
  return {
    id: nextId++,
    type: "subscription-update",
    data: { type: "update", group, seq, epoch, object: { id: 5, status: `s${seq}` } },
  };
}

/** A client following GROUP from (epoch, seq). */
async function following(epoch = "e1", seq = 10) {
  const c = connected();
  const subscribed = c.subscribe(GROUP);
  answer(FakeWebSocket.latest(), { group: GROUP, seq, epoch });
  assert.deepEqual(await subscribed, { group: GROUP, seq, epoch });
  return c;
}

function reconnect() {
  FakeWebSocket.latest().drop();
  mock.timers.tick(1000);
  const socket = FakeWebSocket.latest();
  socket.accept();
  return socket;
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

beforeEach(() => {
  FakeWebSocket.reset();
  mock.timers.enable({ apis: ["setTimeout"] });
});

afterEach(() => {
  mock.timers.reset();
});

// ------------------------------------------------------------- the package

test("the module exports the client, its error and event types, by name and as default", () => {
  assert.equal(RohrpostDefault, RohrpostClient);
  assert.equal(RohrpostClient.RohrpostError, RohrpostError);
  assert.equal(groupOf({ type: "order", id: 5 }), "order-5");
  assert.equal(DEFAULTS.requestTimeout, 10000);
  assert.ok(new RohrpostClient("ws://x/", { autoConnect: false }) instanceof EventTarget);
});

test("the classic build is generated from this module and up to date", () => {
  const output = execFileSync(process.execPath, [join(ROOT, "js/build.mjs"), "--check"], { encoding: "utf8" });
  assert.match(output, /up to date/);
  const Classic = require(join(ROOT, "rohrpost_signals/static/rohrpost_signals/rohrpost.js"));
  assert.equal(Classic.name, "RohrpostClient");
  assert.deepEqual(Object.keys(Classic.DEFAULTS), Object.keys(DEFAULTS));
  assert.deepEqual(
    Object.getOwnPropertyNames(Classic.prototype).sort(),
    Object.getOwnPropertyNames(RohrpostClient.prototype).sort()
  );
});

// ------------------------------------------------------------- listeners

test("on() returns a function that stops the listener", () => {
  const c = connected();
  const seen = [];
  const stop = c.on("subscription-update", (data) => seen.push(data.seq));
  FakeWebSocket.latest().reply(update(1, undefined, "elsewhere"));
  stop();
  stop(); // twice is harmless
  FakeWebSocket.latest().reply(update(2, undefined, "elsewhere"));
  assert.deepEqual(seen, [1]);
});

test("every listener gets (data, message): the update, under its group too", async () => {
  const c = await following();
  const seen = [];
  c.on("subscription-update", (data, message) => seen.push(["all", data.seq, message.id]));
  c.on(GROUP, (data, message) => seen.push(["group", data.seq, message.id]));
  c.on("open", (data, message) => seen.push(["open", data, message]));
  const frame = update(11, "e1");
  FakeWebSocket.latest().reply(frame);
  assert.deepEqual(seen, [
    ["all", 11, frame.id],
    ["group", 11, frame.id],
  ]);
  reconnect();
  assert.deepEqual(seen.at(-1), ["open", { reconnected: true }, null]);
});

test("once() returns an unsubscribe function too", () => {
  const c = connected();
  const seen = [];
  const stop = c.once("pong", () => seen.push("never"));
  stop();
  c.once("subscription-update", (data) => seen.push(data.seq));
  FakeWebSocket.latest().reply(update(1, undefined, "elsewhere"));
  FakeWebSocket.latest().reply(update(2, undefined, "elsewhere"));
  assert.deepEqual(seen, [1]);
});

test("addEventListener gets a RohrpostEvent with the same data and message", () => {
  const c = connected();
  const events = [];
  c.addEventListener("subscription-update", (event) => events.push(event));
  const frame = { id: 77, type: "subscription-update", data: { type: "delete", group: "elsewhere", object: { id: 3 } } };
  FakeWebSocket.latest().reply(frame);
  assert.equal(events.length, 1);
  assert.ok(events[0] instanceof RohrpostEvent);
  assert.equal(events[0].type, "subscription-update");
  assert.deepEqual(events[0].data, frame.data);
  assert.deepEqual(events[0].message, frame);
});

// ------------------------------------------------------------- timeouts

test("subscribe() times out after requestTimeout by default, and a late reply is dropped", async () => {
  const c = connected({ requestTimeout: 3000 });
  const subscribed = c.subscribe(GROUP);
  mock.timers.tick(2999);
  await settle();
  mock.timers.tick(1);
  await assert.rejects(subscribed, (error) => error instanceof RohrpostError && error.code === "timeout");
  answer(FakeWebSocket.latest(), { group: GROUP, seq: 1, epoch: "e1" });
  assert.deepEqual(c.groups(), []);
});

test("subscribe() and call() take their own timeout; 0 waits for ever", async () => {
  const c = connected({ requestTimeout: 1000 });
  const quick = c.subscribe(GROUP, { timeout: 50 });
  const patient = c.call("report", { n: 1 }, { timeout: 0 });
  const slowCall = c.call("report", { n: 2 }, { timeout: 5000 });
  mock.timers.tick(50);
  await assert.rejects(quick, { code: "timeout" });
  mock.timers.tick(5000);
  await assert.rejects(slowCall, { code: "timeout" });
  const [first] = FakeWebSocket.latest().sentOf("report");
  answer(FakeWebSocket.latest(), "done", first);
  assert.equal(await patient, "done");
});

test("a subscribe waiting for the connection times out too, and is never sent", async () => {
  const c = new RohrpostClient("ws://test/", { WebSocket: FakeWebSocket, pingInterval: 0, requestTimeout: 2000 });
  const subscribed = c.subscribe(GROUP);
  mock.timers.tick(2000);
  await assert.rejects(subscribed, { code: "timeout" });
  FakeWebSocket.latest().accept();
  assert.deepEqual(FakeWebSocket.latest().sent, []);
});

test("a refusal carries the server's error code", async () => {
  const c = connected();
  const subscribed = c.subscribe("order-999");
  const frame = FakeWebSocket.latest().sentOf("subscribe")[0];
  FakeWebSocket.latest().reply({ id: frame.id, type: "subscribe", error: "Permission denied for group 'order-999'.", code: "forbidden" });
  await assert.rejects(subscribed, { code: "server", serverCode: "forbidden" });
});

// ------------------------------------------------------------- epochs

test("the client keeps each group's epoch and resumes with since and epoch", async () => {
  const c = await following("e1", 10);
  assert.equal(c.epoch(GROUP), "e1");
  FakeWebSocket.latest().reply(update(11, "e1"));
  const socket = reconnect();
  assert.deepEqual(socket.sentOf("subscribe")[0].data, { group: GROUP, since: 11, epoch: "e1" });
});

test("a live update from another epoch is a resync: emitted, then the update, numbered anew", async () => {
  const c = await following("e1", 10);
  const seen = [];
  c.on("resync-required", (data, message) => seen.push(["resync", data, message.id]));
  c.on("subscription-update", (data) => seen.push(["update", data.epoch, data.seq]));
  const socket = FakeWebSocket.latest();
  socket.reply(update(11, "e1"));
  const restarted = update(3, "e2"); // Redis came back empty: numbers start again
  socket.reply(restarted);
  socket.reply(update(4, "e2"));
  assert.deepEqual(seen, [
    ["update", "e1", 11],
    ["resync", { group: GROUP, seq: 2, epoch: "e2" }, restarted.id],
    ["update", "e2", 3],
    ["update", "e2", 4],
  ]);
  assert.equal(c.epoch(GROUP), "e2");
  assert.equal(c.lastSeq(GROUP), 4);
});

test("a straggler of an epoch the group has left is dropped, not a second resync", async () => {
  const c = await following("e1", 10);
  const seen = [];
  c.on("resync-required", (data) => seen.push(["resync", data.epoch]));
  c.on("subscription-update", (data) => seen.push(["update", data.epoch, data.seq]));
  const socket = FakeWebSocket.latest();
  socket.reply(update(1, "e2"));
  socket.reply(update(11, "e1")); // sent before the restart, arrived after
  socket.reply(update(2, "e2"));
  assert.deepEqual(seen, [
    ["resync", "e2"],
    ["update", "e2", 1],
    ["update", "e2", 2],
  ]);
  assert.equal(c.duplicates, 1);
  assert.equal(c.epoch(GROUP), "e2");
});

test("held updates of the old epoch are dropped when the epoch changes", async () => {
  const c = await following("e1", 10);
  const seqs = [];
  c.on("subscription-update", (data) => seqs.push(`${data.epoch}/${data.seq}`));
  const socket = FakeWebSocket.latest();
  socket.reply(update(13, "e1")); // waits for 11 and 12
  socket.reply(update(1, "e2"));
  socket.reply(update(2, "e2"));
  assert.deepEqual(seqs, ["e2/1", "e2/2"]);
  assert.equal(c.lastSeq(GROUP), 2);
  mock.timers.tick(10000);
  assert.equal(socket.sentOf("subscribe").length, 1, "no repair of the old generation's gap");
});

test("resync-required from the server adopts its epoch and seq", async () => {
  const c = await following("e1", 10);
  const seen = [];
  c.on("resync-required", (data) => seen.push(data));
  c.on("subscription-update", (data) => seen.push(data.seq));
  const socket = reconnect();
  answer(socket, { group: GROUP, seq: 4, epoch: "e2" });
  socket.reply({ id: null, type: "resync-required", data: { group: GROUP, seq: 4, epoch: "e2" } });
  socket.reply(update(5, "e2"));
  await settle();
  assert.deepEqual(seen, [{ group: GROUP, seq: 4, epoch: "e2" }, 5]);
  assert.equal(c.epoch(GROUP), "e2");
  assert.deepEqual(reconnect().sentOf("subscribe")[0].data, { group: GROUP, since: 5, epoch: "e2" });
});

test("a kept since and epoch are sent as given, and the server's resync follows", async () => {
  const c = connected();
  const seen = [];
  c.on("resync-required", (data) => seen.push(data));
  const subscribed = c.subscribe({ group: GROUP, since: 40, epoch: "old" });
  const socket = FakeWebSocket.latest();
  assert.deepEqual(socket.sentOf("subscribe")[0].data, { group: GROUP, since: 40, epoch: "old" });
  answer(socket, { group: GROUP, seq: 7, epoch: "new" });
  socket.reply({ id: null, type: "resync-required", data: { group: GROUP, seq: 7, epoch: "new" } });
  await subscribed;
  assert.deepEqual(seen, [{ group: GROUP, seq: 7, epoch: "new" }]);
  assert.equal(c.lastSeq(GROUP), 7);
  assert.equal(c.epoch(GROUP), "new");
});

// ------------------------------------------------------------- unsubscribed

test("a subscription the server ends is emitted, dropped and not subscribed again", async () => {
  const c = await following();
  const seen = [];
  c.on("unsubscribed", (data, message) => seen.push([data, message.type]));
  const socket = FakeWebSocket.latest();
  socket.reply({ id: null, type: "unsubscribed", data: { group: GROUP, reason: "forbidden" } });
  assert.deepEqual(seen, [[{ group: GROUP, reason: "forbidden" }, "unsubscribed"]]);
  assert.deepEqual(c.groups(), []);
  const next = reconnect();
  assert.deepEqual(next.sentOf("subscribe"), []);
});

// ------------------------------------------------------------- the template tag

test("fromScript() binds a client to the groups in the script's data attributes", async () => {
  const attributes = {
    "data-rohrpost-url": "ws://test/ws/rohrpost/",
    "data-rohrpost-groups": JSON.stringify(["order-5", "orders"]),
    "data-rohrpost-name": "liveOrders",
  };
  const script = { getAttribute: (name) => (name in attributes ? attributes[name] : null) };
  const warn = mock.method(console, "warn", () => {});
  try {
    const c = RohrpostClient.fromScript(script, { WebSocket: FakeWebSocket, pingInterval: 0 });
    assert.equal(globalThis.liveOrders, c);
    const errors = [];
    c.on("error", (error) => errors.push(error.group));
    const socket = FakeWebSocket.latest();
    socket.accept();
    assert.deepEqual(socket.sentOf("subscribe").map((frame) => frame.data), ["order-5", "orders"]);
    socket.acceptSubscribes((group) => group === "orders");
    await settle();
    assert.deepEqual(c.groups(), ["order-5"]);
    assert.deepEqual(errors, ["orders"]);
    assert.equal(warn.mock.callCount(), 1);
    assert.match(warn.mock.calls[0].arguments[0], /Permission denied for group 'orders'/);
  } finally {
    warn.mock.restore();
    delete globalThis.liveOrders;
  }
});
