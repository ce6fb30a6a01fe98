// The engine server and a client in this process, joined by in-memory streams: the whole
// protocol (framing included) without a child process. For tests; the extension
// uses EngineProcess so that model code never runs in the extension host.
import { PassThrough } from 'node:stream';

import { StreamMessageReader, StreamMessageWriter, createMessageConnection } from 'vscode-jsonrpc/node';

import { serveStreams, type EngineServer, type EngineServerOptions } from '../../src/engineHost/server';
import { EngineClient } from '../../src/node/engineClient';

export interface InProcessEngine {
  client: EngineClient;
  server: EngineServer;
  /** The server's input: raw bytes written here reach it as if sent by the client. */
  toServer: PassThrough;
  /** The client's input: everything the server writes. */
  toClient: PassThrough;
  /** Frees the model and closes both ends. */
  dispose(): Promise<void>;
}

export function connectInProcess(options: EngineServerOptions = {}): InProcessEngine {
  const toServer = new PassThrough();
  const toClient = new PassThrough();
  const { connection: serverConnection, server } = serveStreams(toServer, toClient, options);
  const clientConnection = createMessageConnection(new StreamMessageReader(toClient), new StreamMessageWriter(toServer));
  clientConnection.listen();
  return {
    client: new EngineClient(clientConnection),
    server,
    toServer,
    toClient,
    async dispose() {
      await server.close();
      clientConnection.dispose();
      serverConnection.dispose();
      toServer.end();
      toClient.end();
    },
  };
}
