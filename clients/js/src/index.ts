// @dashstream/client: a resuming client of the DashStream gateway.
export {
  DashStreamClient,
  jwtExp,
  type ClientEvents,
  type ClientOptions,
  type ClientState,
  type ReconnectInfo,
  type StreamRecord,
  type TokenSource,
  type WebSocketConstructor,
  type WebSocketLike,
} from "./client.js";
export {
  DEFAULT_MAX_PAYLOAD,
  DecodeError,
  decodeRecord,
  messageType,
  threadPositions,
  type DecodeErrorKind,
  type DecodeOptions,
  type DecodedRecord,
  type Framing,
  type MessageType,
  type ThreadPosition,
} from "./decode.js";
export * from "./protocol.js";
export { LocalStorageCursorStore, MemoryCursorStore, type CursorStore, type StorageLike } from "./store.js";
export * from "./gen/dashstream/v1/dashstream_pb.js";
