import * as exported from './index.ts';
import { API_VERSION } from './openapi.ts';
import { Components, type JsonObject } from './openapi-components.ts';
import { type WsRouteDef, wsRoutes } from './ws.schema.ts';

/** The AsyncAPI 3 document of the public WebSockets (channels, the frames each way, their schemas). */
export function buildAsyncApi(): JsonObject {
  const components = new Components(exported);
  const channels: JsonObject = {};
  const operations: JsonObject = {};
  const messages: JsonObject = {};
  for (const [key, def] of Object.entries(wsRoutes) as [string, WsRouteDef][]) {
    const address = def.path.replace(/:([a-zA-Z_]+)/g, '{$1}');
    const params = [...def.path.matchAll(/:([a-zA-Z_]+)/g)].map((m) => m[1]!);
    const channelMessages: JsonObject = {};
    const names = [...new Set([...Object.keys(def.receive), ...Object.keys(def.send)])];
    for (const name of names) {
      const schema = (def.receive as JsonObject)[name] ?? (def.send as JsonObject)[name];
      messages[name] ??= {
        name,
        contentType: name === 'TerminalBytes' ? 'application/octet-stream' : 'application/json',
        payload: components.ref(schema, name),
      };
      channelMessages[name] = { $ref: `#/components/messages/${name}` };
    }
    channels[key] = {
      address,
      title: def.summary,
      messages: channelMessages,
      ...(params.length
        ? { parameters: Object.fromEntries(params.map((p) => [p, { description: 'The VM id' }])) }
        : {}),
      bindings: {
        ws: {
          method: 'GET',
          ...(def.query ? { query: components.ref(def.query) } : {}),
        },
      },
    };
    const op = (action: 'send' | 'receive', which: JsonObject) => ({
      action,
      channel: { $ref: `#/channels/${key}` },
      messages: Object.keys(which).map((n) => ({ $ref: `#/channels/${key}/messages/${n}` })),
      security: [{ $ref: '#/components/securitySchemes/bearer' }],
    });
    if (Object.keys(def.receive).length) operations[`${def.operationId}Receive`] = op('receive', def.receive);
    if (Object.keys(def.send).length) operations[`${def.operationId}Send`] = op('send', def.send);
  }
  return {
    asyncapi: '3.0.0',
    info: {
      title: 'nqvm WebSockets',
      version: API_VERSION,
      description:
        'Live channels of the nqvm manager. Authenticate with `Authorization: Bearer TOKEN` or the console session ' +
        'cookie; the upgrade is refused (401) before any frame otherwise. Operations are from the client side.',
    },
    servers: { manager: { host: '127.0.0.1:18080', protocol: 'ws', description: 'A manager (MANAGER_BIND)' } },
    defaultContentType: 'application/json',
    channels,
    operations,
    components: {
      messages,
      schemas: components.definitions(),
      securitySchemes: {
        bearer: { type: 'httpApiKey', name: 'Authorization', in: 'header', description: 'Bearer TOKEN' },
      },
    },
  };
}
