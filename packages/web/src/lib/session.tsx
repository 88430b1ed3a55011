import { api, type Me, type UserPermission } from '@nqvm/api';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { createContext, type ReactNode, useContext, useEffect } from 'react';
import { Navigate, useLocation, useNavigate } from 'react-router';
import { Loading } from '../components/ui.tsx';
import { ApiError, call, onUnauthorized } from './api.ts';
import { startLiveUpdates } from './live.ts';

const SessionContext = createContext<Me | null>(null);

export function useMe(): Me {
  const me = useContext(SessionContext);
  if (!me) throw new Error('useMe outside a session');
  return me;
}

/**
 * Whether the signed-in caller holds a permission (`/v1/auth/me` lists them: the role narrowed by a token's
 * scope). The console hides what the caller cannot do instead of offering buttons the API would refuse.
 */
export function useCan(): (permission: UserPermission) => boolean {
  const me = useMe();
  return (permission) => me.permissions.includes(permission);
}

/** Renders its children only when the caller holds the permission. */
export function Can({ permission, children }: { permission: UserPermission; children: ReactNode }) {
  return useCan()(permission) ? children : null;
}

export function loginPath(from: string): string {
  return from && from !== '/' && !from.startsWith('/login') ? `/login?next=${encodeURIComponent(from)}` : '/login';
}

/** Gate for every page but login: loads `me`, sends to login on any 401, runs live updates. */
export function RequireSession({ children }: { children: ReactNode }) {
  const qc = useQueryClient();
  const navigate = useNavigate();
  const location = useLocation();
  const me = useQuery({ queryKey: ['me'], queryFn: () => call(api.auth.me), retry: false, staleTime: 60_000 });

  useEffect(() => {
    const expired = () => {
      // Several requests may meet the ended session: the first one's page is the one to return to.
      if (window.location.pathname.startsWith('/login')) return;
      qc.clear();
      navigate(loginPath(window.location.pathname + window.location.search), { replace: true });
    };
    const off = onUnauthorized(expired);
    return () => {
      off();
    };
  }, [qc, navigate]);
  const ok = Boolean(me.data);
  useEffect(() => (ok ? startLiveUpdates(qc) : undefined), [ok, qc]);

  if (me.isPending) return <Loading label="Checking session…" />;
  if (me.error) {
    if (me.error instanceof ApiError && me.error.status === 401)
      return <Navigate to={loginPath(location.pathname + location.search)} replace />;
    return (
      <div role="alert" className="m-8 rounded border border-red-300 bg-red-50 p-4 text-red-800">
        Cannot reach the manager: {me.error.message}
      </div>
    );
  }
  return <SessionContext.Provider value={me.data}>{children}</SessionContext.Provider>;
}
