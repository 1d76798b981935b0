// The caller (from /api/me) for every view below the shell: views read their tenant and rights from here.
import { createContext, useContext } from 'react'
import type { Me } from '@/api/client'

export const MeContext = createContext<Me | null>(null)

export function useMeContext(): Me {
  const me = useContext(MeContext)
  if (me === null) throw new Error('useMeContext outside the shell')
  return me
}

export function useTenant(): string {
  return useMeContext().tenant_id
}
