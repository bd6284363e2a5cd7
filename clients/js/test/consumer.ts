// Compiled (not run) by `npm run build`: an application's use of the
// published declarations (dist/*.d.ts) type-checks, messages narrow by case.
import {
  DashStreamClient,
  EventType,
  LocalStorageCursorStore,
  decodeRecord,
  type CursorStore,
  type DashStreamMessage,
  type StreamRecord,
} from "../dist/index.js";

const store: CursorStore = new LocalStorageCursorStore({ storage: { getItem: () => null, setItem: () => {}, removeItem: () => {} } });
const client = new DashStreamClient({ url: "ws://127.0.0.1:3002/ws", protocol: 2, format: "json", store, token: async () => "t" });

function nodeOf(m: DashStreamMessage): string {
  const body = m.message;
  switch (body.case) {
    case "event":
      return body.value.eventType === EventType.NODE_START ? body.value.nodeId : "";
    case "stateDiff":
      return String(body.value.fullState.length);
    default:
      return "";
  }
}

client.on("record", async (r: StreamRecord) => {
  const seq: bigint | undefined = r.header?.sequence;
  if (r.message) nodeOf(r.message);
  if (r.value) decodeRecord(r.value).type satisfies string;
  void seq;
});
client.on("gap", (g) => {
  const from: string = g.fromOffset;
  void from;
});
client.start();
