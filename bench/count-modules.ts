// Preloaded by bench/cli.ts (`node --import`): records every module file the process loads
// and writes their URLs as JSON to BENCH_MODULES_OUT when it exits.

import { writeFileSync } from 'node:fs';
import { registerHooks } from 'node:module';

const loaded = new Set<string>();
registerHooks({
  load(url, context, next) {
    if (!url.startsWith('node:')) loaded.add(url);
    return next(url, context);
  },
});
process.on('exit', () => writeFileSync(process.env.BENCH_MODULES_OUT!, JSON.stringify([...loaded])));
