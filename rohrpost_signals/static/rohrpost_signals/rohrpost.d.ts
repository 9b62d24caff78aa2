// Hand-written types of the rohrpost_signals browser client (rohrpost.mjs and
// the generated rohrpost.js). Checked by `tsc --noEmit` against js/typed-usage.ts.

/** The object of a change, as the server's payload builds it. */
export type RohrpostObject = { id: number | string; updated_fields?: string[]; [field: string]: unknown };

/** `data` of a subscription-update frame. */
export interface SubscriptionUpdate<T = RohrpostObject> {
  type: "create" | "update" | "delete";
  group: string;
  /** Per group, +1 per message; absent from servers without a history. */
  seq?: number;
  /** The history's generation that `seq` counts in. */
  epoch?: string;
  object: T;
}

/** Any frame the server sends. */
export interface RohrpostFrame<D = unknown> {
  id: number | string | null;
  type: string;
  data?: D;
  error?: string;
  /** The stable error code of an error reply ("forbidden", "unauthenticated", ...). */
  code?: string;
}

/** What a subscribe asks for: a group name, {group}, or rohrpost.js style {type, id}. */
export type SubscribeArgument =
  | string
  | { group: string; since?: number; epoch?: string; [key: string]: unknown }
  | { type: string; id: number | string; since?: number; epoch?: string; [key: string]: unknown };

/** The reply to a subscribe. */
export interface SubscribeReply {
  group: string;
  seq?: number;
  epoch?: string;
}

export interface ResyncRequired {
  group: string;
  /** Updates after this seq follow; null from a server without sequence numbers. */
  seq: number | null;
  epoch: string | null;
}

export interface Unsubscribed {
  group: string;
  /** Why the server ended it: "forbidden", "logged-out", ... */
  reason: string;
}

export interface RequestOptions {
  /** Milliseconds to wait for the reply; 0 waits forever. Default: the client's requestTimeout. */
  timeout?: number;
}

export interface RohrpostClientOptions {
  pingInterval?: number;
  pingTimeout?: number;
  requestTimeout?: number;
  reconnect?: boolean;
  reconnectDelay?: number;
  maxReconnectDelay?: number;
  reconnectFactor?: number;
  token?: string;
  protocols?: string | string[];
  autoConnect?: boolean;
  WebSocket?: { new (url: string, protocols?: string | string[]): WebSocket };
  random?: () => number;
  gapTimeout?: number;
}

/** The events the client emits and their `data`; any other name is a group or a server-sent type. */
export interface RohrpostEventMap {
  "subscription-update": SubscriptionUpdate;
  "resync-required": ResyncRequired;
  unsubscribed: Unsubscribed;
  open: { reconnected: boolean };
  closed: { code: number | undefined; reason: string; wasClean: boolean };
  reconnecting: { attempt: number; delay: number };
  resubscribed: { groups: string[]; failed: string[]; resumed: string[] };
  error: Error | RohrpostError;
  message: RohrpostFrame;
  ping: null;
  pong: null;
}

/** One listener signature for every event: the payload, then the frame it came in (null if none). */
export type Listener<D> = (data: D, message: RohrpostFrame | null) => void;

export type ErrorCode = "server" | "timeout" | "closed" | "cancelled";

export class RohrpostError extends Error {
  constructor(message: string, code: ErrorCode, response?: RohrpostFrame);
  readonly code: ErrorCode;
  /** The whole error frame, for code "server". */
  readonly response: RohrpostFrame | null;
  readonly id: RohrpostFrame["id"] | undefined;
  readonly type: string | undefined;
  /** The server's stable error code, for code "server". */
  readonly serverCode: string | null;
  /** The group concerned, for errors about one group. */
  group: string | undefined;
}

/** The Event the client dispatches (addEventListener); on() listeners get its data and message. */
export class RohrpostEvent<D = unknown> extends Event {
  constructor(type: string, data: D, message?: RohrpostFrame | null);
  readonly data: D;
  readonly message: RohrpostFrame | null;
}

export const DEFAULTS: Readonly<Required<Omit<RohrpostClientOptions, "WebSocket" | "protocols">>>;

/** The group name a subscribe argument stands for, as the server derives it. */
export function groupOf(args: SubscribeArgument): string | null;

export class RohrpostClient extends EventTarget {
  constructor(url: string, options?: RohrpostClientOptions);

  readonly url: string;
  readonly options: Readonly<RohrpostClientOptions>;
  readonly state: "idle" | "connecting" | "open" | "waiting" | "closed";
  readonly socketState: "open" | "connecting" | "closed";
  readonly attempt: number;
  readonly reconnects: number;
  readonly duplicates: number;

  connect(): void;
  close(code?: number, reason?: string): void;
  subscribe(group: SubscribeArgument, options?: RequestOptions): Promise<SubscribeReply>;
  unsubscribe(group: SubscribeArgument, options?: RequestOptions): Promise<{ group: string | null }>;
  call<R = unknown>(type: string, data?: unknown, options?: RequestOptions): Promise<R>;
  groups(): string[];
  lastSeq(group: string): number | null;
  epoch(group: string): string | null;
  reconnectDelay(attempt: number): number;

  /** Listen; returns a function that stops listening. */
  on<K extends keyof RohrpostEventMap>(event: K, listener: Listener<RohrpostEventMap[K]>): () => void;
  /** A group's updates are emitted under the group's name. */
  on<T = RohrpostObject>(event: string, listener: Listener<SubscriptionUpdate<T>>): () => void;
  once<K extends keyof RohrpostEventMap>(event: K, listener: Listener<RohrpostEventMap[K]>): () => void;
  once<T = RohrpostObject>(event: string, listener: Listener<SubscriptionUpdate<T>>): () => void;
  off(event: string, listener: Listener<never>): this;

  /** A client from a script element's data-rohrpost-* attributes ({% rohrpost_client %}). */
  static fromScript(script: Element, options?: RohrpostClientOptions): RohrpostClient;

  static readonly RohrpostClient: typeof RohrpostClient;
  static readonly RohrpostError: typeof RohrpostError;
  static readonly RohrpostEvent: typeof RohrpostEvent;
  static readonly groupOf: typeof groupOf;
  static readonly DEFAULTS: typeof DEFAULTS;
  static readonly default: typeof RohrpostClient;
}

export default RohrpostClient;
