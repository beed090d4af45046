// A server worker thread: TypeScript sources run through tsx's loader, registered here because a
// worker does not inherit the loader hooks of the thread that started it.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
