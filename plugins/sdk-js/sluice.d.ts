// Types of sluice.js, the Sluice plugin SDK for JavaScript (sluice:plugin/http-client@0.2.0).

/** Header fields as name/value pairs, in order; a name may repeat. */
export type Headers = [string, Uint8Array][];
/**
 * Header fields encoded as the WIT carries them: one byte list, `name:value\n` each, in order
 * (no spaces around `:`, no `\r`).
 */
export type EncodedHeaders = Uint8Array;
/** What a header value or a body may be given as (strings are UTF-8). */
export type Bytes = string | Uint8Array | ArrayBuffer | ArrayBufferView | number[];

/** The bytes of a string (UTF-8) or of a byte container. */
export function toBytes(value: Bytes | null | undefined): Uint8Array;

/** The fields of an encoded list (values are views into it); throws a PluginError if malformed. */
export function decodeHeaders(bytes: EncodedHeaders): Headers;
/** Encodes fields; throws a PluginError for a name with `:`/`\r`/`\n` or a value with `\r`/`\n`. */
export function encodeHeaders(fields: [string, Bytes][]): EncodedHeaders;

/** The WIT `error-kind`s. */
export declare const ErrorKind: {
  readonly CONNECT: 'connect';
  readonly TIMEOUT: 'timeout';
  readonly PROTOCOL: 'protocol';
  readonly BODY_TOO_LARGE: 'body-too-large';
  readonly HOST_NOT_ALLOWED: 'host-not-allowed';
  readonly PLUGIN: 'plugin';
  readonly OTHER: 'other';
};
export type ErrorKindName = (typeof ErrorKind)[keyof typeof ErrorKind];

/** An error with a WIT `error-kind`: what `send` throws, and what a plugin may throw. */
export declare class PluginError extends Error {
  constructor(kind: ErrorKindName, message: string);
  readonly kind: ErrorKindName;
  /** The plugin's own failure. */
  static plugin(message: string): PluginError;
}

declare abstract class Message {
  /** The fields, to read or change in place (reading it means the list is encoded again). */
  headers: Headers;
  body: Uint8Array;
  /** The fields as the WIT carries them: the bytes received when nothing changed them. */
  encodedHeaders(): EncodedHeaders;
  /** The first value of header `name` (case-insensitive) as text. */
  header(name: string): string | undefined;
  /** The first value of header `name` as bytes. */
  headerBytes(name: string): Uint8Array | undefined;
  /** Every value of header `name` as text, in order. */
  headerAll(name: string): string[];
  /** Replaces every value of header `name`. */
  setHeader(name: string, value: Bytes): this;
  /** Adds a value to header `name`, keeping the others. */
  appendHeader(name: string, value: Bytes): this;
  /** Removes header `name`. */
  removeHeader(name: string): this;
  /** Replaces the body. */
  setBody(body: Bytes): this;
  /** The body as UTF-8 text. */
  text(): string;
  /** The body parsed as JSON. */
  json(): unknown;
}

/** An HTTP request; `url` is absolute (`http://host:port/path?query`). */
export declare class Request extends Message {
  constructor(method: string, url: string, headers?: [string, Bytes][] | EncodedHeaders, body?: Bytes);
  method: string;
  url: string;
  /** `scheme://authority` ('' if the URL is not absolute). */
  readonly origin: string;
  /** Path and query (`/a/b?x=1`; '/' if the path is empty). */
  readonly pathAndQuery: string;
  /** The path without the query. */
  readonly path: string;
  /** The query without '?', if any. */
  readonly query: string | undefined;
}

/** An HTTP response, body fully buffered. */
export declare class Response extends Message {
  constructor(status: number, headers?: [string, Bytes][] | EncodedHeaders, body?: Bytes);
  status: number;
  /** A JSON body with `content-type: application/json`. */
  static json(status: number, value: unknown): Response;
  /** A text body with `content-type: text/plain; charset=utf-8`. */
  static text(status: number, text: string): Response;
}

/** Makes an HTTP call through the gateway (allowed hosts only); throws a PluginError. */
export function send(request: Request): Response;

/** Log lines through the gateway (target `sluice::plugin`). */
export declare const log: {
  trace(message: unknown): void;
  debug(message: unknown): void;
  info(message: unknown): void;
  warn(message: unknown): void;
  error(message: unknown): void;
};

/** Which hooks the gateway calls instead of `handle`. */
export interface Hooks {
  onRequest?: boolean;
  onResponse?: boolean;
}

/** A plugin: every field optional. `S` is the state `init` returns. */
export interface PluginDefinition<S = any> {
  /** Validates the parsed settings (`{}` when absent) and returns the state; throw to refuse. */
  init?(settings: any): S;
  /** The hooks (none: `handle` serves every request). */
  hooks?: Hooks | ((state: S) => Hooks);
  /** Answers one request (handle mode); default: the hooks around `send`. */
  handle?(state: S, request: Request): Response;
  /** Changes the request (or answers it with a Response); undefined keeps it. */
  onRequest?(state: S, request: Request): Request | Response | undefined;
  /** Changes the backend's answer; undefined keeps it. */
  onResponse?(state: S, response: Response): Response | undefined;
}

/** The world's `handler` export, as componentize-js expects it. */
export interface Handler {
  init(settings: string): void;
  hooks(): { onRequest: boolean; onResponse: boolean };
  handle(request: unknown): unknown;
  onRequest(request: unknown): unknown;
  onResponse(response: unknown): unknown;
}

/** `export const handler = definePlugin({...})`. */
export function definePlugin<S>(plugin: PluginDefinition<S>): Handler;
