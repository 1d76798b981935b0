// Long dotted or slashed identifiers (dbt unique_ids, file paths, relation names) in narrow columns: offer a line
// break after each separator, so `model.shop.customers` wraps between its parts instead of in the middle of one.
import { Fragment } from 'react'

export function Breakable({ text }: { text: string }) {
  const parts = text.split(/(?<=[./])/)
  return (
    <>
      {parts.map((part, i) => (
        <Fragment key={i}>
          {part}
          {i < parts.length - 1 && <wbr />}
        </Fragment>
      ))}
    </>
  )
}
