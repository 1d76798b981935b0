// The layout anchor of the UI benchmark: elkjs alone, with ELK's default layered options, in Node, on the boxes and
// links a benchmark graph draws. Usage: node elk_anchor.mjs <graph.json> -> prints {"ms": <layout time>}.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'

const require = createRequire(new URL('../../ui/package.json', import.meta.url))
const ELK = require('elkjs/lib/elk.bundled.js')
const { boxes, links } = JSON.parse(readFileSync(process.argv[2], 'utf8'))
const graph = {
  id: 'root',
  layoutOptions: { 'elk.algorithm': 'layered', 'elk.direction': 'RIGHT' },
  children: boxes.map((b) => ({ id: b.id, width: b.width, height: b.height })),
  edges: links.map((l, i) => ({ id: `e${i}`, sources: [l.source], targets: [l.target] })),
}
const started = performance.now()
await new ELK().layout(graph)
process.stdout.write(JSON.stringify({ ms: performance.now() - started }) + '\n')
