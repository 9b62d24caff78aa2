// Resuming in rohrpost.js: per-group seq, replay with `since`, duplicates,
// out-of-order updates, gap repair and resync-required (docs/resuming.rst).
// Run: node --test tests/js/*.test.js
"use strict";

const { test, beforeEach, afterEach, mock } = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");

const RohrpostClient = require(path.join(__dirname, "../../rohrpost_signals/static/rohrpost_signals/rohrpost.js"));
const { FakeWebSocket } = require("./fake-websocket.js");

const settle = () => new Promise((resolve) => setImmediate(resolve));

const GROUP = "board-1-cards";
const START = 1795628596800000; // a clock-based origin, as the server hands them out

function connected(options = {}) {
  const c = new RohrpostClient("ws://test/ws/rohrpost/", {
    WebSocket: FakeWebSocket,
    random: () => 0.5,
    pingInterval: 0,
    gapTimeout: 2000,
    ...options,
  });
  FakeWebSocket.latest().accept();
  return c;
}

/** The server's answer to the last subscribe frame: the reply carries the group's current seq. */
function answerSubscribe(socket, seq, group = GROUP) {
  const frame = socket.sentOf("subscribe").at(-1);
  const data = seq === undefined ? { group } : { group, seq };
  socket.reply({ id: frame.id, type: "subscribe", data });
  return frame;
}

let nextMessageId = 1000;
const messageIds = new Map(); // seq -> id: a replayed copy has the id of the live one

function update(seq, group = GROUP, extra = {}) {
  const key = `${group}/${seq}`;
  if (!messageIds.has(key)) messageIds.set(key, nextMessageId++);
  return {
    id: messageIds.get(key),
    type: "subscription-update",
    data: { type: "update", group, ...(seq === null ? {} : { seq }), object: { id: 1, title: `t${seq}` }, ...extra },
  };
}

function resync(seq, group = GROUP) {
  return { id: 987654321, type: "resync-required", data: { group, seq } };
}

/** A client following GROUP from seq START. */
async function following(options) {
  const c = connected(options);
  const subscribed = c.subscribe({ group: GROUP });
  answerSubscribe(FakeWebSocket.latest(), START);
  assert.deepEqual(await subscribed, { group: GROUP, seq: START });
  return c;
}

function delivered(c) {
  const seqs = [];
  c.on("subscription-update", (data) => seqs.push(data.seq));
  return seqs;
}

function reconnect(c) {
  FakeWebSocket.latest().drop();
  mock.timers.tick(1000);
  const socket = FakeWebSocket.latest();
  socket.accept();
  return socket;
}

beforeEach(() => {
  FakeWebSocket.reset();
  messageIds.clear();
  mock.timers.enable({ apis: ["setTimeout"] });
});

afterEach(() => {
  mock.timers.reset();
});

// ---------------------------------------------------------- the resume point

test("the subscribe reply's seq is where the group starts", async () => {
  const c = await following();
  assert.equal(c.lastSeq(GROUP), START);
  const seqs = delivered(c);
  FakeWebSocket.latest().reply(update(START + 1));
  FakeWebSocket.latest().reply(update(START + 2));
  assert.deepEqual(seqs, [START + 1, START + 2]);
  assert.equal(c.lastSeq(GROUP), START + 2);
  assert.equal(c.lastSeq("not-followed"), null);
});

test("updates right behind the reply, in the same tick, are counted from the reply", () => {
  const c = connected();
  const seqs = delivered(c);
  c.subscribe(GROUP);
  const socket = FakeWebSocket.latest();
  // No promise callback runs between these frames.
  answerSubscribe(socket, START);
  socket.reply(update(START + 1));
  socket.reply(update(START + 3));
  assert.deepEqual(seqs, [START + 1]);
  assert.equal(c.lastSeq(GROUP), START + 1);
});

test("after a reconnect the group is resumed with since, and the replay is delivered in order", async () => {
  const c = await following();
  const seqs = delivered(c);
  const events = [];
  c.on("resubscribed", (info) => events.push(info));
  c.on("resync-required", (info) => events.push(["resync", info]));
  FakeWebSocket.latest().reply(update(START + 1));

  const socket = reconnect(c);
  const [frame] = socket.sentOf("subscribe");
  assert.deepEqual(frame.data, { group: GROUP, since: START + 1 });
  // The server answers with its current seq, then replays what was missed, then goes on live.
  answerSubscribe(socket, START + 4);
  for (const seq of [START + 2, START + 3, START + 4, START + 5]) socket.reply(update(seq));
  await settle();
  assert.deepEqual(seqs, [START + 1, START + 2, START + 3, START + 4, START + 5]);
  assert.equal(c.lastSeq(GROUP), START + 5);
  assert.deepEqual(events, [{ groups: [GROUP], failed: [], resumed: [GROUP] }]);
});

test("a rohrpost.js style argument keeps its keys when resumed", async () => {
  const c = connected({ token: "jwt" });
  const subscribed = c.subscribe({ type: "order", id: 5 });
  answerSubscribe(FakeWebSocket.latest(), 40, "order-5");
  await subscribed;
  const socket = reconnect(c);
  assert.deepEqual(socket.sentOf("subscribe")[0].data, { type: "order", id: 5, group: "order-5", since: 40 });
  assert.equal(socket.sentOf("subscribe")[0].auth_jwt, "jwt");
});

test("subscribing again to a followed group asks for what came in between", async () => {
  const c = await following();
  FakeWebSocket.latest().reply(update(START + 1));
  const again = c.subscribe({ group: GROUP });
  assert.deepEqual(FakeWebSocket.latest().sentOf("subscribe").at(-1).data, { group: GROUP, since: START + 1 });
  answerSubscribe(FakeWebSocket.latest(), START + 1);
  assert.deepEqual(await again, { group: GROUP, seq: START + 1 });
  assert.equal(c.lastSeq(GROUP), START + 1);
});

test("a since passed by the caller is where the client resumes, and is not repeated later", async () => {
  const c = connected();
  const seqs = delivered(c);
  const subscribed = c.subscribe({ group: GROUP, since: START + 7 }); // kept from an earlier page
  const socket = FakeWebSocket.latest();
  answerSubscribe(socket, START + 9);
  socket.reply(update(START + 8));
  socket.reply(update(START + 9));
  await subscribed;
  assert.deepEqual(seqs, [START + 8, START + 9]);
  const next = reconnect(c);
  assert.deepEqual(next.sentOf("subscribe")[0].data, { group: GROUP, since: START + 9 });
});

test("a since given for a followed group is sent as given, and replayed copies are dropped", async () => {
  const c = await following();
  const seqs = delivered(c);
  const socket = FakeWebSocket.latest();
  socket.reply(update(START + 1));
  socket.reply(update(START + 2));
  const again = c.subscribe({ group: GROUP, since: START });
  assert.deepEqual(socket.sentOf("subscribe").at(-1).data, { group: GROUP, since: START });
  answerSubscribe(socket, START + 3);
  for (const seq of [START + 1, START + 2, START + 3]) socket.reply(update(seq));
  await again;
  assert.deepEqual(seqs, [START + 1, START + 2, START + 3]);
  assert.equal(c.duplicates, 2);
});

// ----------------------------------------------------------------- duplicates

test("a message delivered already is dropped, by seq or by id", async () => {
  const c = await following();
  const seqs = delivered(c);
  const socket = FakeWebSocket.latest();
  socket.reply(update(START + 1));
  socket.reply(update(START + 1)); // the same message again (live and replayed)
  socket.reply(update(START + 2));
  socket.reply(update(START + 1)); // late, older than the resume point
  const sameId = update(START + 3);
  socket.reply(sameId);
  socket.reply({ ...sameId, data: { ...sameId.data, seq: START + 4 } }); // same id, another seq
  assert.deepEqual(seqs, [START + 1, START + 2, START + 3]);
  assert.equal(c.duplicates, 3);
  assert.equal(c.lastSeq(GROUP), START + 3);
});

test("the seam of a resume: live copies of replayed messages are dropped", async () => {
  const c = await following();
  const seqs = delivered(c);
  const socket = reconnect(c);
  answerSubscribe(socket, START + 2);
  socket.reply(update(START + 1));
  socket.reply(update(START + 2));
  socket.reply(update(START + 2)); // a live copy that overtook nothing but arrived too
  socket.reply(update(START + 3));
  await settle();
  assert.deepEqual(seqs, [START + 1, START + 2, START + 3]);
  assert.equal(c.duplicates, 1);
});

// ------------------------------------------------------------------ ordering

test("an update that comes early waits for the ones before it", async () => {
  const c = await following();
  const seqs = delivered(c);
  const socket = FakeWebSocket.latest();
  socket.reply(update(START + 3)); // from a second writer process, faster than the first
  socket.reply(update(START + 2));
  assert.deepEqual(seqs, []);
  assert.equal(c.lastSeq(GROUP), START);
  socket.reply(update(START + 1));
  assert.deepEqual(seqs, [START + 1, START + 2, START + 3]);
  assert.equal(c.lastSeq(GROUP), START + 3);
  mock.timers.tick(10000);
  assert.equal(socket.sentOf("subscribe").length, 1, "no repair once the gap closed");
});

test("the resume point never moves past a gap", async () => {
  const c = await following();
  const seqs = delivered(c);
  FakeWebSocket.latest().reply(update(START + 1));
  FakeWebSocket.latest().reply(update(START + 3));
  assert.equal(c.lastSeq(GROUP), START + 1);
  const socket = reconnect(c);
  assert.deepEqual(socket.sentOf("subscribe")[0].data, { group: GROUP, since: START + 1 });
  answerSubscribe(socket, START + 3);
  socket.reply(update(START + 2));
  socket.reply(update(START + 3)); // replayed; the held copy went out already
  assert.deepEqual(seqs, [START + 1, START + 2, START + 3]);
  assert.equal(c.duplicates, 1);
});

test("a gap that does not close in time is repaired by a replay", async () => {
  const c = await following({ gapTimeout: 2000 });
  const seqs = delivered(c);
  const socket = FakeWebSocket.latest();
  socket.reply(update(START + 2)); // START + 1 was lost on the way
  socket.reply(update(START + 3));
  mock.timers.tick(1999);
  assert.equal(socket.sentOf("subscribe").length, 1);
  mock.timers.tick(1);
  const repair = socket.sentOf("subscribe")[1];
  assert.deepEqual(repair.data, { group: GROUP, since: START });
  answerSubscribe(socket, START + 3);
  for (const seq of [START + 1, START + 2, START + 3]) socket.reply(update(seq));
  await settle();
  assert.deepEqual(seqs, [START + 1, START + 2, START + 3]);
  assert.equal(c.lastSeq(GROUP), START + 3);
  assert.deepEqual(c.groups(), [GROUP]);
});

test("a repair the server now refuses drops the group and reports it", async () => {
  const c = await following();
  const errors = [];
  c.on("error", (error) => errors.push(error));
  const socket = FakeWebSocket.latest();
  socket.reply(update(START + 2));
  mock.timers.tick(2000);
  const repair = socket.sentOf("subscribe")[1];
  socket.reply({ id: repair.id, type: "subscribe", error: `Permission denied for group '${GROUP}'.` });
  await settle();
  assert.equal(errors.length, 1);
  assert.equal(errors[0].group, GROUP);
  assert.deepEqual(c.groups(), []);
});

test("no repair is asked for a group left meanwhile", async () => {
  const c = await following();
  const socket = FakeWebSocket.latest();
  socket.reply(update(START + 2));
  c.unsubscribe(GROUP).catch(() => {}); // never answered here: times out
  mock.timers.tick(10000);
  assert.equal(socket.sentOf("subscribe").length, 1);
});

// ------------------------------------------------------------ resync-required

test("resync-required is an event, and the group goes on from its seq", async () => {
  const c = await following();
  const seen = [];
  c.on("subscription-update", (data) => seen.push(["update", data.seq]));
  c.on("resync-required", (data, message) => seen.push(["resync", data, message.type]));
  const socket = reconnect(c);
  answerSubscribe(socket, START + 5000);
  socket.reply(resync(START + 5000));
  socket.reply(update(START + 5001));
  await settle();
  assert.deepEqual(seen, [
    ["resync", { group: GROUP, seq: START + 5000, epoch: null }, "resync-required"],
    ["update", START + 5001],
  ]);
  assert.equal(c.lastSeq(GROUP), START + 5001);
  assert.deepEqual(reconnect(c).sentOf("subscribe")[0].data, { group: GROUP, since: START + 5001 });
});

test("after a resync, held updates older than its seq are dropped and newer ones follow it", async () => {
  const c = await following();
  const seen = [];
  c.on("subscription-update", (data) => seen.push(["update", data.seq]));
  c.on("resync-required", (data) => seen.push(["resync", data.seq]));
  const socket = FakeWebSocket.latest();
  socket.reply(update(START + 3));
  socket.reply(update(START + 6));
  socket.reply(resync(START + 5));
  assert.deepEqual(seen, [["resync", START + 5], ["update", START + 6]]);
  mock.timers.tick(10000);
  assert.equal(socket.sentOf("subscribe").length, 1, "nothing left to repair");
});

test("a resume that the server answers without seq asks the page to reload", async () => {
  const c = await following();
  const seen = [];
  c.on("resync-required", (data, message) => seen.push([data, message]));
  const socket = reconnect(c);
  answerSubscribe(socket, undefined); // the server switched its history off
  await settle();
  assert.deepEqual(seen, [[{ group: GROUP, seq: null, epoch: null }, null]]);
  assert.equal(c.lastSeq(GROUP), null);
  assert.deepEqual(reconnect(c).sentOf("subscribe")[0].data, { group: GROUP });
});

// -------------------------------------------------------- servers without seq

test("against a server without seq nothing changes", async () => {
  const c = connected();
  const events = [];
  c.on("resubscribed", (info) => events.push(info));
  c.on("resync-required", (info) => events.push(info));
  const seqs = [];
  c.on("subscription-update", (data) => seqs.push(data.object.title));
  const subscribed = c.subscribe("card-7");
  answerSubscribe(FakeWebSocket.latest(), undefined, "card-7");
  assert.deepEqual(await subscribed, { group: "card-7" });
  const plain = update(null, "card-7");
  FakeWebSocket.latest().reply(plain);
  FakeWebSocket.latest().reply(plain); // no seq: nothing tells copies apart, so both go out
  assert.deepEqual(seqs, ["tnull", "tnull"]);
  assert.equal(c.lastSeq("card-7"), null);
  const socket = reconnect(c);
  assert.deepEqual(socket.sentOf("subscribe")[0].data, "card-7");
  answerSubscribe(socket, undefined, "card-7");
  await settle();
  assert.deepEqual(events, [{ groups: ["card-7"], failed: [], resumed: [] }]);
});

test("updates of a group the client does not follow are passed on as before", () => {
  const c = connected();
  const seqs = delivered(c);
  FakeWebSocket.latest().reply(update(5, "elsewhere"));
  FakeWebSocket.latest().reply(update(5, "elsewhere"));
  assert.deepEqual(seqs, [5, 5]);
});
