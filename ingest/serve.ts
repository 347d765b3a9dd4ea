/**
 * `kiln serve`: start the HTTP service. bin/ parses the command line (see
 * optionsFromArgv in config.ts) and calls serve().
 */

import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { DEFAULTS, type ServeOptions } from './config.js';
import { createServer, type KilnServer } from './server.js';

export { optionsFromArgv, SERVE_USAGE } from './config.js';
export type { ServeOptions } from './config.js';

export interface ServeHandle {
  port: number;
  url: string;
  kiln: KilnServer;
  /** Stops accepting requests, lets running ones finish, writes pending rows, closes the store. */
  close(): Promise<void>;
}

export async function serve(opts: ServeOptions = {}): Promise<ServeHandle> {
  const log = opts.log ?? ((m: string) => console.error(m));
  const kiln = await createServer({ ...opts, log });
  const server: Server = await new Promise((resolve, reject) => {
    const s = kiln.app.listen(opts.port ?? DEFAULTS.port, opts.host ?? '::', () => resolve(s));
    s.once('error', reject);
  });
  // Agents hold connections open between pushes; keep them a bit longer than
  // typical client idle timeouts so a push rarely races a closing socket.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  const port = (server.address() as AddressInfo).port;
  log(`kiln: serving on :${port} (store: ${kiln.store.description}, retention ${opts.retentionDays ?? DEFAULTS.retentionDays} days)`);
  let closing: Promise<void> | undefined;
  return {
    port,
    url: `http://localhost:${port}`,
    kiln,
    close() {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
        });
        await kiln.close();
      })();
      return closing;
    },
  };
}
