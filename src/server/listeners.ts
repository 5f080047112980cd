import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance, FastifyServerFactoryHandler } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { ThrottledLog } from '../lib/throttled-log.js';
import { capConnectionsPerIp } from './connection-cap.js';
import { listenOrExplain, reasonOf, StartupError } from './startup-error.js';
import { readTlsFiles, watchTlsFiles, type TlsFiles } from './tls-credentials.js';

function urlOf(server: HttpServer | HttpsServer, scheme: string): string {
  const a = server.address() as AddressInfo;
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return `${scheme}://${host === '0.0.0.0' ? '127.0.0.1' : host === '[::]' ? '[::1]' : host}:${a.port}`;
}

/**
 * The HTTP listener and, with SSL_CERT and SSL_KEY, the HTTPS one: one handler behind
 * both, so TLS requests and upgrades reach the same routes. Owns the TLS server and the
 * watch that reloads a renewed certificate.
 */
export class Listeners {
  private tlsServer: HttpsServer | undefined;
  private stopTlsWatch = (): void => undefined;
  private readonly tlsFiles: TlsFiles | undefined;

  constructor(
    private readonly config: Config,
    private readonly log: Logger,
  ) {
    const { cert, key } = config.tls;
    this.tlsFiles = cert && key ? { cert, key } : undefined;
  }

  /** Fastify's `serverFactory`: called once, while the app is built. */
  readonly serverFactory = (handler: FastifyServerFactoryHandler): HttpServer => {
    // No whole-request deadline in Node (one value for every route, and audio uploads
    // are bodies that last as long as a call): request-deadline.ts sets one per route.
    // Headers still have Node's timeout.
    const http = createHttpServer({ requestTimeout: 0 }, handler);
    const files = this.tlsFiles;
    if (files) {
      // The files were checked with the config; this catches them changing since.
      let tls: HttpsServer;
      try {
        tls = createHttpsServer({ ...readTlsFiles(files), requestTimeout: 0 }, handler);
      } catch (err) {
        throw new StartupError(`TLS: cannot use SSL_CERT and SSL_KEY: ${reasonOf(err)}`, { cause: err });
      }
      this.tlsServer = tls;
      tls.on('upgrade', (req, socket, head) => http.emit('upgrade', req, socket, head));
      this.stopTlsWatch = watchTlsFiles(tls, files, this.config.tls.reloadSeconds, this.log);
    }
    return http;
  };

  /** HTTP_MAX_CONNECTIONS_PER_IP on both listeners. */
  capConnections(app: FastifyInstance, clientLog: ThrottledLog): void {
    const { maxConnectionsPerIp, trustProxy } = this.config.http;
    if (maxConnectionsPerIp <= 0) return;
    const servers = this.tlsServer ? [app.server, this.tlsServer] : [app.server];
    capConnectionsPerIp(servers, maxConnectionsPerIp, trustProxy, clientLog);
  }

  /** Binds HTTP (through the app), then HTTPS; a failure says which setting to change. */
  async listen(app: FastifyInstance): Promise<void> {
    const { config } = this;
    const host = config.http.bindAddress;
    await listenOrExplain('HTTP', host, config.http.port, 'HTTP_PORT or BIND_ADDRESS', () =>
      app.listen({ port: config.http.port, host }),
    );
    const tls = this.tlsServer;
    if (!tls) return;
    await listenOrExplain(
      'HTTPS',
      host,
      config.tls.port,
      'SSL_PORT or BIND_ADDRESS',
      () =>
        new Promise<void>((resolve, reject) => {
          tls.once('error', reject);
          tls.listen(config.tls.port, host, () => {
            tls.off('error', reject);
            resolve();
          });
        }),
    );
  }

  urls(app: FastifyInstance): { http: string; https?: string } {
    const out: { http: string; https?: string } = { http: urlOf(app.server, 'http') };
    if (this.tlsServer?.listening) out.https = urlOf(this.tlsServer, 'https');
    return out;
  }

  /** First step of shutdown: no certificate reload while closing. */
  stopWatching(): void {
    this.stopTlsWatch();
  }

  /** Closes the HTTPS listener and its connections (the HTTP one closes with the app). */
  async closeTls(): Promise<void> {
    const tls = this.tlsServer;
    if (!tls?.listening) return;
    await new Promise<void>((resolve) => {
      tls.close(() => resolve());
      tls.closeAllConnections();
    });
  }
}
