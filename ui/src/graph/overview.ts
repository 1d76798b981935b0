// The overview of a large drawing: every box and edge painted on one <canvas> instead of thousands of React Flow
// nodes. Below a zoom where node labels cannot be read anyway, this draws a 10,000-node graph in milliseconds;
// closer in, React Flow draws the (few) visible nodes as usual. Pure drawing and hit-testing, no React.

export type Box = { id: string; x: number; y: number; width: number; height: number; colour: string; dot: string | null }
export type Line = { from: string; to: string }
export type Transform = readonly [x: number, y: number, zoom: number]

/** Colour of each resource type's left edge (as in the styles of the detailed nodes). */
export const KIND_COLOURS: Record<string, string> = {
  model: '#3559e0',
  source: '#1a7f37',
  seed: '#0e8a7d',
  snapshot: '#8250df',
  exposure: '#d4580f',
  test: '#8c959f',
  unit_test: '#8c959f',
  analysis: '#57606a',
  metric: '#bf3989',
  semantic_model: '#bf3989',
  saved_query: '#bf3989',
  group: '#9aa8f0',
}

export const STATUS_COLOURS: Record<string, string> = { ok: '#1a7f37', bad: '#cf222e', warn: '#b76e00', skip: '#8c959f', running: '#0969da' }

export type Rect = { x: number; y: number; width: number; height: number }

/** The part of the flow a transform shows in a view of ``width`` x ``height`` pixels. */
export function visibleRegion(transform: Transform, width: number, height: number): Rect {
  const [tx, ty, zoom] = transform
  return { x: -tx / zoom, y: -ty / zoom, width: width / zoom, height: height / zoom }
}

export function contains(outer: Rect, inner: Rect): boolean {
  return inner.x >= outer.x && inner.y >= outer.y && inner.x + inner.width <= outer.x + outer.width && inner.y + inner.height <= outer.y + outer.height
}

/** ``rect`` grown by ``share`` of its size on every side. */
export function grown(rect: Rect, share: number): Rect {
  return { x: rect.x - rect.width * share, y: rect.y - rect.height * share, width: rect.width * (1 + 2 * share), height: rect.height * (1 + 2 * share) }
}

export function overlaps(rect: Rect, x: number, y: number, width: number, height: number): boolean {
  return x < rect.x + rect.width && x + width > rect.x && y < rect.y + rect.height && y + height > rect.y
}

/** Paints the edges, and the boxes too unless React Flow draws them (``boxes: false``, close in). */
export function drawOverview(
  context: CanvasRenderingContext2D,
  size: { width: number; height: number; ratio: number },
  transform: Transform,
  boxes: readonly Box[],
  lines: readonly Line[],
  selected: string | null,
  withBoxes = true,
): void {
  const [tx, ty, zoom] = transform
  const { width, height, ratio } = size
  context.setTransform(ratio, 0, 0, ratio, 0, 0)
  context.clearRect(0, 0, width, height)
  context.setTransform(ratio * zoom, 0, 0, ratio * zoom, ratio * tx, ratio * ty)
  // what is on screen, in flow coordinates: boxes and lines wholly outside are skipped
  const left = -tx / zoom
  const top = -ty / zoom
  const right = left + width / zoom
  const bottom = top + height / zoom
  const byId = new Map(boxes.map((b) => [b.id, b]))
  context.beginPath()
  for (const line of lines) {
    const a = byId.get(line.from)
    const b = byId.get(line.to)
    if (!a || !b) continue
    const x1 = a.x + a.width
    const y1 = a.y + a.height / 2
    const x2 = b.x
    const y2 = b.y + b.height / 2
    if (Math.max(x1, x2) < left || Math.min(x1, x2) > right || Math.max(y1, y2) < top || Math.min(y1, y2) > bottom) continue
    context.moveTo(x1, y1)
    context.lineTo(x2, y2)
  }
  context.lineWidth = 1 / zoom
  context.strokeStyle = withBoxes ? 'rgba(140, 149, 159, 0.45)' : 'rgba(110, 119, 129, 0.7)'
  context.stroke()
  if (!withBoxes) return
  for (const box of boxes) {
    if (box.x > right || box.x + box.width < left || box.y > bottom || box.y + box.height < top) continue
    context.fillStyle = '#ffffff'
    context.fillRect(box.x, box.y, box.width, box.height)
    context.fillStyle = box.colour
    context.fillRect(box.x, box.y, Math.max(box.width * 0.06, 4), box.height)
    if (box.dot) {
      context.fillStyle = box.dot
      context.fillRect(box.x + box.width - box.height * 0.45, box.y + box.height * 0.3, box.height * 0.3, box.height * 0.4)
    }
    if (box.id === selected) {
      context.lineWidth = 3 / zoom
      context.strokeStyle = '#3559e0'
      context.strokeRect(box.x, box.y, box.width, box.height)
    }
  }
}

/** The box under a point of the flow (the topmost, i.e. the last drawn), or null. */
export function boxAt(boxes: readonly Box[], x: number, y: number): Box | null {
  for (let i = boxes.length - 1; i >= 0; i--) {
    const b = boxes[i]!
    if (x >= b.x && x <= b.x + b.width && y >= b.y && y <= b.y + b.height) return b
  }
  return null
}

/** The smallest rectangle holding every box. */
export function bounds(boxes: readonly Box[]): { x: number; y: number; width: number; height: number } {
  if (boxes.length === 0) return { x: 0, y: 0, width: 1, height: 1 }
  let x1 = Infinity
  let y1 = Infinity
  let x2 = -Infinity
  let y2 = -Infinity
  for (const b of boxes) {
    x1 = Math.min(x1, b.x)
    y1 = Math.min(y1, b.y)
    x2 = Math.max(x2, b.x + b.width)
    y2 = Math.max(y2, b.y + b.height)
  }
  return { x: x1, y: y1, width: x2 - x1, height: y2 - y1 }
}
