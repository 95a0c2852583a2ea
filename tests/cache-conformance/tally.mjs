// Counts the results of http-cache-tests' CLI (JSON on stdin) the way cache-tests.fyi shows them:
// node tally.mjs PACKAGE_DIR < results.json. Prints the counts per kind of result, then one line
// per test that failed (required ⛔️, optimal ⚠️, setup 🔹, dependency ⚪️), with the harness's message.
import { readFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import path from 'node:path'

const pkg = path.resolve(process.argv[2])
const { default: tests } = await import(pathToFileURL(path.join(pkg, 'tests/index.mjs')))
const { default: surrogate } = await import(pathToFileURL(path.join(pkg, 'tests/surrogate-control.mjs')))
tests.push(surrogate)
const display = await import(pathToFileURL(path.join(pkg, 'lib/display.mjs')))
const results = JSON.parse(readFileSync(0, 'utf8'))

const counts = {}
const failures = []
for (const suite of tests) {
  for (const test of suite.tests) {
    const r = display.determineTestResult(tests, test.id, results)
    const name = r[2] || String(r[0])
    counts[name] = (counts[name] || 0) + 1
    if (['⛔️', '⚠️', '🔹', '⚪️'].includes(r[2])) {
      const detail = Array.isArray(results[test.id]) ? results[test.id][1] : ''
      failures.push(`${r[2]} ${suite.id} ${test.id}: ${detail}`)
    }
  }
}
for (const [k, v] of Object.entries(counts).sort((a, b) => b[1] - a[1])) console.log(`${v}\t${k}`)
console.log('--- tests that failed')
for (const f of failures) console.log(f)
