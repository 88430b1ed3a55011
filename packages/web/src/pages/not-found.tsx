import { Link } from 'react-router';
import { Empty, PageHeader } from '../components/ui.tsx';

export function NotFoundPage() {
  return (
    <>
      <PageHeader title="Page not found" />
      <Empty>
        Nothing lives at this address.{' '}
        <Link to="/" className="text-blue-700 underline">
          Back to the dashboard
        </Link>
      </Empty>
    </>
  );
}
