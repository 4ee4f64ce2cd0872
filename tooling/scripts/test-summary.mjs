// Adds up the vitest JSON reports every package wrote (test-results/vitest.json) and prints one
// closing line, "tests: N passed, N failed, N skipped", so a CI log states what ran.
// Exits non-zero if any report has failures or if no test ran at all.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
let passed = 0;
let failed = 0;
let skipped = 0;
const rows = [];
for (const dir of readdirSync(path.join(root, 'packages'))) {
  const file = path.join(root, 'packages', dir, 'test-results', 'vitest.json');
  if (!existsSync(file)) continue;
  const r = JSON.parse(readFileSync(file, 'utf8'));
  passed += r.numPassedTests;
  failed += r.numFailedTests;
  skipped += r.numPendingTests + (r.numTodoTests ?? 0);
  rows.push(`  @diffmix/${dir}: ${r.numPassedTests} passed, ${r.numFailedTests} failed`);
}
console.log(rows.join('\n'));
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
