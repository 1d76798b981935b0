import { render, screen } from '@testing-library/react'
import { describe, expect, it } from 'vitest'
import { badgeClass, StatusBadge } from './common'

describe('StatusBadge', () => {
  it.each([
    ['success', 'ok'],
    ['failed', 'bad'],
    ['error', 'bad'],
    ['warning', 'warn'],
    ['warn', 'warn'],
    ['awaiting_approval', 'wait'],
    ['running', 'running'],
    ['canceled', 'skip'],
    ['something new', 'none'],
  ])('colours %s as %s', (status, cls) => {
    expect(badgeClass(status)).toBe(cls)
  })

  it('reads the status in words, and a dash when there is none', () => {
    const { rerender } = render(<StatusBadge status="awaiting_approval" />)
    expect(screen.getByText('awaiting approval')).toHaveClass('badge', 'wait')
    rerender(<StatusBadge status={null} />)
    expect(screen.getByText('—')).toHaveClass('none')
  })
})
