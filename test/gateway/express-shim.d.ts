// express ships without types and @types/express is not installed; the A2A SDK's server
// adapters need only what the tests call.
declare module 'express' {
  import type { IncomingMessage, Server, ServerResponse } from 'node:http';
  type Handler = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;
  export type RequestHandler = Handler;
  interface App {
    use(path: string, h: Handler): App;
    use(h: Handler): App;
    listen(port: number, host: string, cb: () => void): Server;
  }
  export default function express(): App;
}
