import { api, type UserPermission } from '@nqvm/api';
import { useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { NavLink, Outlet, useNavigate } from 'react-router';
import { call } from '../lib/api.ts';
import { useLiveConnected } from '../lib/live.ts';
import { useCan, useMe } from '../lib/session.tsx';
import { setThemeChoice, type ThemeChoice, useThemeChoice } from '../lib/theme.ts';
import { PasswordButton } from './password-dialog.tsx';
import { TaskPanel } from './task-panel.tsx';
import { Button } from './ui.tsx';

/** Each page and the permission it needs to show anything: pages the caller cannot read are not offered. */
const NAV: [string, string, UserPermission][] = [
  ['/', 'Dashboard', 'session'],
  ['/vms', 'Virtual machines', 'vm:read'],
  ['/registry', 'Registry', 'image:read'],
  ['/templates', 'Templates', 'template:read'],
  ['/hosts', 'Hosts', 'host:read'],
  ['/join-tokens', 'Join tokens', 'host:read'],
  ['/events', 'Events', 'event:read'],
  ['/alerts', 'Alerts', 'alert:read'],
  ['/webhooks', 'Webhooks', 'webhook:read'],
  ['/users', 'Users', 'user:read'],
  ['/tokens', 'API tokens', 'token:read'],
  ['/settings', 'Settings', 'session'],
];

export function AppShell() {
  const me = useMe();
  const can = useCan();
  const live = useLiveConnected();
  const qc = useQueryClient();
  const navigate = useNavigate();
  const [menuOpen, setMenuOpen] = useState(false);

  const logout = async () => {
    await call(api.auth.logout).catch(() => undefined);
    qc.clear();
    navigate('/login', { replace: true });
  };

  return (
    <div className="min-h-screen md:grid md:grid-cols-[14rem_1fr]">
      <a href="#main" className="sr-only focus:not-sr-only focus:absolute focus:p-2">
        Skip to content
      </a>
      <aside className="border-b border-slate-200 bg-slate-900 text-slate-100 md:min-h-screen md:border-r md:border-b-0 dark:bg-slate-50 dark:text-slate-900">
        <div className="flex items-center justify-between px-4 py-3">
          <span className="text-lg font-bold tracking-tight">nqvm</span>
          <button
            type="button"
            className="rounded-md border border-slate-400 px-3 py-1.5 text-sm font-medium text-slate-100 hover:bg-slate-700 md:hidden dark:text-slate-900 dark:hover:bg-slate-200"
            aria-expanded={menuOpen}
            aria-controls="main-nav"
            onClick={() => setMenuOpen((o) => !o)}
          >
            {menuOpen ? 'Close menu' : 'Menu'}
          </button>
        </div>
        <nav id="main-nav" aria-label="Main" className={`${menuOpen ? 'block' : 'hidden'} px-2 pb-3 md:block`}>
          <ul className="flex flex-col gap-0.5">
            {NAV.filter(([, , permission]) => can(permission)).map(([to, label]) => (
              <li key={to}>
                <NavLink
                  to={to}
                  end={to === '/'}
                  onClick={() => setMenuOpen(false)}
                  className={({ isActive }) =>
                    `block rounded px-3 py-1.5 text-sm ${isActive ? 'bg-slate-700 font-medium text-slate-50 dark:bg-slate-200 dark:text-slate-950' : 'text-slate-300 hover:bg-slate-800 dark:text-slate-700 dark:hover:bg-slate-100'}`
                  }
                >
                  {label}
                </NavLink>
              </li>
            ))}
          </ul>
        </nav>
      </aside>
      <div className="flex min-w-0 flex-col">
        <header className="flex flex-wrap items-center justify-end gap-x-3 gap-y-1 border-b border-slate-200 bg-white px-4 py-2 text-sm">
          <span className="flex items-center gap-1.5 text-slate-500" title="Live updates over the events WebSocket">
            <span className={`h-2 w-2 rounded-full ${live ? 'bg-green-500' : 'bg-slate-400'}`} aria-hidden />
            {live ? 'Live' : 'Connecting…'}
          </span>
          <span className="text-slate-700">
            {me.username} <span className="text-slate-400">({me.role})</span>
          </span>
          {me.auth === 'session' ? <PasswordButton /> : null}
          <TaskPanel />
          <ThemeToggle />
          <Button variant="secondary" onClick={logout}>
            Log out
          </Button>
        </header>
        <main id="main" className="min-w-0 flex-1 p-4 md:p-6">
          <Outlet />
        </main>
      </div>
    </div>
  );
}

function ThemeToggle() {
  const choice = useThemeChoice();
  return (
    <select
      aria-label="Theme"
      value={choice}
      onChange={(e) => setThemeChoice(e.target.value as ThemeChoice)}
      className="rounded-md border border-slate-300 bg-white px-1.5 py-1 text-sm"
    >
      <option value="system">Theme: system</option>
      <option value="light">Theme: light</option>
      <option value="dark">Theme: dark</option>
    </select>
  );
}
