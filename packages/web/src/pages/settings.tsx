import { Link } from 'react-router';
import { Card, DefinitionList, PageHeader } from '../components/ui.tsx';
import { useMe } from '../lib/session.tsx';

export function SettingsPage() {
  const me = useMe();
  return (
    <>
      <PageHeader title="Settings" />
      <div className="flex flex-col gap-4">
        <Card title="Account">
          <DefinitionList
            items={[
              ['Username', me.username],
              ['Role', me.role],
              ['Signed in with', me.auth],
              ['User id', <code key="id">{me.id}</code>],
            ]}
          />
        </Card>
        <Card title="API tokens">
          <p className="text-sm">
            Your API tokens, their scope and last use: <Link to="/tokens">API tokens</Link>.
          </p>
        </Card>
      </div>
    </>
  );
}
