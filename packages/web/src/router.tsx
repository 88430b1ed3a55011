import { createBrowserRouter } from 'react-router';
import { AppShell } from './components/layout.tsx';
import { RequireSession } from './lib/session.tsx';
import { DashboardPage } from './pages/dashboard.tsx';
import { EventsPage } from './pages/events.tsx';
import { HostsPage } from './pages/hosts.tsx';
import { LoginPage } from './pages/login.tsx';
import { NotFoundPage } from './pages/not-found.tsx';
import { RegistryPage } from './pages/registry.tsx';
import { SettingsPage } from './pages/settings.tsx';
import { TemplatesPage } from './pages/templates.tsx';
import { VmCreatePage } from './pages/vms/create.tsx';
import { VmDetailPage } from './pages/vms/detail.tsx';
import { VmListPage } from './pages/vms/list.tsx';

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
      { path: 'vms', element: <VmListPage /> },
      { path: 'vms/new', element: <VmCreatePage /> },
      { path: 'vms/:id', element: <VmDetailPage /> },
      { path: 'vms/:id/:tab', element: <VmDetailPage /> },
      { path: 'registry', element: <RegistryPage /> },
      { path: 'templates', element: <TemplatesPage /> },
      { path: 'hosts', element: <HostsPage /> },
      { path: 'events', element: <EventsPage /> },
      { path: 'settings', element: <SettingsPage /> },
      { path: '*', element: <NotFoundPage /> },
    ],
  },
]);
