// A MessageReader wrapper for the engine's side of the connection that answers malformed input
// the way JSON-RPC 2.0 says, which vscode-jsonrpc alone does not: bytes that do not parse (every
// error of the inner reader, FrameReader, which has resynchronised past them) get a ParseError
// reply (id null), and a JSON value that is not a request, notification or response
// gets an InvalidRequest reply (with its id when it has a usable one). Neither reaches the
// connection, which goes on serving.
import {
  AbstractMessageReader,
  ErrorCodes,
  type DataCallback,
  type Disposable,
  type Message,
  type MessageReader,
  type MessageWriter,
} from 'vscode-jsonrpc';

type Id = string | number | null;

function errorReply(id: Id, code: number, message: string): Message {
  return { jsonrpc: '2.0', id, error: { code, message } } as Message;
}

/** Why `value` is not a JSON-RPC 2.0 message, or undefined if it is one. */
function problem(value: unknown): { id: Id; why: string } | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { id: null, why: Array.isArray(value) ? 'batches are not supported' : 'a message must be a JSON object' };
  }
  const m = value as Record<string, unknown>;
  const id: Id = typeof m.id === 'string' || typeof m.id === 'number' ? m.id : null;
  if (m.jsonrpc !== '2.0') return { id, why: 'the "jsonrpc" member must be "2.0"' };
  if ('method' in m) {
    if (typeof m.method !== 'string') return { id, why: 'the "method" member must be a string' };
    if ('id' in m && m.id !== null && typeof m.id !== 'string' && typeof m.id !== 'number')
      return { id: null, why: 'the "id" member must be a string or a number' };
    if ('params' in m && (typeof m.params !== 'object' || m.params === null))
      return { id, why: 'the "params" member must be an object or an array' };
    return undefined;
  }
  if ('id' in m && ('result' in m || 'error' in m)) return undefined; // a response
  return { id, why: 'it is neither a request, a notification nor a response' };
}

export class GuardedMessageReader extends AbstractMessageReader implements MessageReader {
  constructor(
    private readonly inner: MessageReader,
    private readonly writer: MessageWriter,
    private readonly log: (line: string) => void = () => {},
  ) {
    super();
    inner.onError((error) => {
      const detail = error instanceof Error ? error.message.split('\n')[0] : String(error);
      this.log(`engine: unreadable message (${detail}); answered with a parse error.`);
      this.reply(errorReply(null, ErrorCodes.ParseError, `The engine could not read a message (${detail}); it was ignored.`));
    });
    inner.onClose(() => this.fireClose());
    inner.onPartialMessage((info) => this.firePartialMessage(info));
  }

  listen(callback: DataCallback): Disposable {
    return this.inner.listen((message) => {
      const bad = problem(message);
      if (!bad) {
        callback(message);
        return;
      }
      this.log(`engine: invalid message (${bad.why}); answered with an invalid-request error.`);
      // A malformed notification gets no reply (JSON-RPC), unless it cannot be told apart from a request.
      const m = message as unknown as Record<string, unknown> | null;
      const isNotification = typeof m === 'object' && m !== null && !('id' in m) && typeof m.method === 'string';
      if (!isNotification)
        this.reply(errorReply(bad.id, ErrorCodes.InvalidRequest, `The engine received an invalid message: ${bad.why}; it was ignored.`));
    });
  }

  override dispose(): void {
    super.dispose();
    this.inner.dispose();
  }

  private reply(message: Message): void {
    this.writer.write(message).catch(() => {
      // The other side is gone; the connection reports that itself.
    });
  }
}
