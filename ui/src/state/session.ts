// Who is using the UI and which project they are looking at. The tenant comes from /api/me; the project is
// remembered between visits (the last one opened), and every project view also carries it in its URL.
import { create } from 'zustand'
import { persist } from 'zustand/middleware'

type SessionState = {
  project: string | null
  setProject: (project: string) => void
}

export const useSession = create<SessionState>()(
  persist((set) => ({ project: null, setProject: (project) => set({ project }) }), { name: 'lockgate.session' }),
)
