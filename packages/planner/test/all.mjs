// `npx tap packages/planner/test` expands a directory with the extensions tap knows,
// and in this repo .ts is not one of them: the TypeScript plugin is off because tsx
// runs the tests (see .taprc). This file is the directory's entry point and loads every
// *.test.ts beside it. The root `tap` run matches *.test.ts itself and never loads this.
import { readdirSync } from 'node:fs';

const here = new URL('.', import.meta.url);
for (const file of readdirSync(here)
  .filter((f) => f.endsWith('.test.ts'))
  .sort()) {
  await import(new URL(file, here).href);
}
