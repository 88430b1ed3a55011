import type { ComponentType } from 'react';
import { createBrowserRouter } from 'react-router';
import { AppShell } from './components/layout.tsx';
import { RequireSession } from './lib/session.tsx';
import { DashboardPage } from './pages/dashboard.tsx';
import { LoginPage } from './pages/login.tsx';
import { NotFoundPage } from './pages/not-found.tsx';

/** Pages past the first screen load on first visit: the initial bundle stays small. */
function page(load: () => Promise<ComponentType>) {
  return async () => ({ Component: await load() });
}

export const router = createBrowserRouter([
  { path: '/login', element: <LoginPage /> },
  {
    path: '/',
    element: (
      <RequireSession>
        <AppShell />
      </RequireSession>
    ),
    children: [
      { index: true, element: <DashboardPage /> },
      { path: 'vms', lazy: page(() => import('./pages/vms/list.tsx').then((m) => m.VmListPage)) },
      { path: 'vms/new', lazy: page(() => import('./pages/vms/create.tsx').then((m) => m.VmCreatePage)) },
      { path: 'vms/:id', lazy: page(() => import('./pages/vms/detail.tsx').then((m) => m.VmDetailPage)) },
      { path: 'vms/:id/:tab', lazy: page(() => import('./pages/vms/detail.tsx').then((m) => m.VmDetailPage)) },
      { path: 'registry', lazy: page(() => import('./pages/registry.tsx').then((m) => m.RegistryPage)) },
      { path: 'templates', lazy: page(() => import('./pages/templates.tsx').then((m) => m.TemplatesPage)) },
      { path: 'hosts', lazy: page(() => import('./pages/hosts.tsx').then((m) => m.HostsPage)) },
      { path: 'events', lazy: page(() => import('./pages/events.tsx').then((m) => m.EventsPage)) },
      { path: 'join-tokens', lazy: page(() => import('./pages/join-tokens.tsx').then((m) => m.JoinTokensPage)) },
      { path: 'alerts', lazy: page(() => import('./pages/alerts.tsx').then((m) => m.AlertsPage)) },
      { path: 'webhooks', lazy: page(() => import('./pages/webhooks.tsx').then((m) => m.WebhooksPage)) },
      { path: 'users', lazy: page(() => import('./pages/users.tsx').then((m) => m.UsersPage)) },
      { path: 'tokens', lazy: page(() => import('./pages/tokens.tsx').then((m) => m.TokensPage)) },
      { path: 'settings', lazy: page(() => import('./pages/settings.tsx').then((m) => m.SettingsPage)) },
      { path: '*', element: <NotFoundPage /> },
    ],
  },
]);
