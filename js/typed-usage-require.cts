// The same package from CommonJS code (require), typed by rohrpost.d.ts.
import rohrpost = require("rohrpost-signals");

const client = new rohrpost.RohrpostClient("ws://example.test/ws/rohrpost/", { pingInterval: 0 });
const off: () => void = client.on("open", ({ reconnected }) => console.log(reconnected));
off();
const Legacy: typeof rohrpost.RohrpostClient = rohrpost.default;
console.log(new Legacy("/ws/", { autoConnect: false }).url);
