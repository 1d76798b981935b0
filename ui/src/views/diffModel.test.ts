import { describe, expect, it } from 'vitest'
import { DIFF, version } from '@/test/fixtures'
import { chooseVersions, codeSides, filterDiff, findEntry, parseVersion } from './diffModel'

describe('chooseVersions', () => {
  const versions = [version(3), version(2), version(1)] // newest first, as the API lists them

  it('defaults to the latest against its previous version', () => {
    expect(chooseVersions(versions, null, null)).toEqual({ from: 2, to: 3 })
  })

  it("defaults `from` to the chosen target's previous version", () => {
    expect(chooseVersions(versions, null, 2)).toEqual({ from: 1, to: 2 })
  })

  it('keeps what the URL says', () => {
    expect(chooseVersions(versions, 1, 3)).toEqual({ from: 1, to: 3 })
  })

  it('compares a single version against the empty graph, and nothing without versions', () => {
    expect(chooseVersions([version(1)], null, null)).toEqual({ from: 0, to: 1 })
    expect(chooseVersions([], null, null)).toBeNull()
  })
})

describe('parseVersion', () => {
  it('reads non-negative integers only', () => {
    expect(parseVersion('3')).toBe(3)
    expect(parseVersion('0')).toBe(0)
    expect(parseVersion(null)).toBeNull()
    expect(parseVersion('-1')).toBeNull()
    expect(parseVersion('2.5')).toBeNull()
    expect(parseVersion('latest')).toBeNull()
  })
})

describe('filterDiff', () => {
  it('matches ids, old ids of renames, resource types and aspects, case-insensitively', () => {
    expect(filterDiff(DIFF, 'PLAN_TIERS').renamed).toHaveLength(1)
    expect(filterDiff(DIFF, 'seed').changed.map((e) => e.unique_id)).toEqual(['seed.shop.countries'])
    expect(filterDiff(DIFF, 'description').changed.map((e) => e.unique_id)).toEqual(['model.shop.customers'])
    const none = filterDiff(DIFF, 'nothing-like-this')
    expect([none.added, none.removed, none.renamed, none.changed].flat()).toEqual([])
  })

  it('keeps everything for an empty filter', () => {
    expect(filterDiff(DIFF, '  ')).toEqual({ added: DIFF.added, removed: DIFF.removed, renamed: DIFF.renamed, changed: DIFF.changed })
  })
})

describe('codeSides', () => {
  it('reads a renamed node under its old id at `from` and its new id at `to`', () => {
    expect(codeSides(DIFF.renamed[0]!)).toEqual({ fromId: 'model.shop.plan_tiers', toId: 'model.shop.plan_tier_lookup' })
  })

  it('leaves the missing side empty for added and removed nodes', () => {
    expect(codeSides(DIFF.added[0]!)).toEqual({ fromId: null, toId: 'model.shop.new_orders' })
    expect(codeSides(DIFF.removed[0]!)).toEqual({ fromId: 'model.shop.legacy', toId: null })
  })

  it('reads a changed node under the same id on both sides', () => {
    expect(codeSides(DIFF.changed[0]!)).toEqual({ fromId: 'model.shop.customers', toId: 'model.shop.customers' })
  })
})

describe('findEntry', () => {
  it('finds an entry by its new id, or a rename by its old id', () => {
    expect(findEntry(DIFF, 'model.shop.customers')?.kind).toBe('changed')
    expect(findEntry(DIFF, 'model.shop.plan_tiers')?.unique_id).toBe('model.shop.plan_tier_lookup')
    expect(findEntry(DIFF, 'model.shop.unknown')).toBeNull()
    expect(findEntry(DIFF, null)).toBeNull()
  })
})
