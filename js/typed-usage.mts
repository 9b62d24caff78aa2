// Typed usage of the package as a front-end project imports it; `tsc -p js`
// fails if rohrpost.d.ts stops describing what the client does.
import RohrpostDefault, {
  RohrpostClient,
  RohrpostError,
  RohrpostEvent,
  groupOf,
  type ResyncRequired,
  type SubscriptionUpdate,
} from "rohrpost-signals";

interface Order {
  id: number;
  status: string;
  total: string;
}

const client: RohrpostClient = new RohrpostDefault("/ws/rohrpost/", { requestTimeout: 5000, token: "jwt" });
const target: EventTarget = client;

const stop: () => void = client.on("subscription-update", (update, message) => {
  const kind: "create" | "update" | "delete" = update.type;
  const seq: number | undefined = update.seq;
  const id = message?.id;
  console.log(kind, seq, id, update.object.id);
});
stop();

client.on<Order>("order-5", (update) => {
  const status: string = update.object.status;
  console.log(status, update.group);
});

client.once("resync-required", (data: ResyncRequired) => {
  const epoch: string | null = data.epoch;
  console.log(epoch, data.seq);
});

client.on("unsubscribed", ({ group, reason }) => console.log(group, reason));
client.on("error", (error) => {
  if (error instanceof RohrpostError) console.log(error.code, error.serverCode, error.group);
});

target.addEventListener("subscription-update", (event) => {
  if (event instanceof RohrpostEvent) console.log(event.data, event.message);
});

async function follow(): Promise<void> {
  const reply = await client.subscribe({ group: "orders" }, { timeout: 2000 });
  const group: string = reply.group;
  await client.subscribe({ type: "order", id: 5 });
  await client.subscribe({ group, since: 41, epoch: "a1" });
  const answer = await client.call<{ ok: boolean }>("report", { n: 1 }, { timeout: 0 });
  const ok: boolean = answer.ok;
  const seq: number | null = client.lastSeq(group);
  console.log(ok, seq, client.epoch(group), client.groups(), client.socketState);
  await client.unsubscribe(group);
}

const handler = (update: SubscriptionUpdate): void => console.log(update.object);
client.on("subscription-update", handler);
client.off("subscription-update", handler);
console.log(groupOf("orders"), RohrpostClient.DEFAULTS.pingInterval, follow);
client.close();
