export { type ConsoleRoutesDeps, consoleRoutes, parseConsoleControl } from './console.routes.ts';
export {
  ConsoleHub,
  type ConsoleHubOptions,
  ConsoleHubs,
  type ConsoleSession,
  type ConsoleTarget,
  type ConsoleViewer,
} from './console-hub.ts';
export { readTail, SCROLLBACK_BYTES, Scrollback, trimScrollback } from './scrollback.ts';
