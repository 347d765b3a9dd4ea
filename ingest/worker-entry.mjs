// Entry of an ingest worker thread: Kiln runs its TypeScript through tsx (no
// compiled copy to go stale), and a worker thread starts without the parent's
// loader, so it registers tsx before loading worker.ts.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
