import react from '@vitejs/plugin-react'
import { defineConfig } from 'vite'

// `make ui` builds into dist/, which `lockgate serve` serves at / (nothing of it is committed).
// `npm run dev` serves the UI with hot reload and forwards /api to a running `lockgate serve`.
export default defineConfig({
  plugins: [react()],
  resolve: { tsconfigPaths: true },
  worker: { format: 'es' },
  build: {
    target: 'es2022',
    chunkSizeWarningLimit: 5000, // Monaco's lazily loaded chunk is about 4 MB
    sourcemap: false,
  },
  server: { proxy: { '/api': 'http://127.0.0.1:8000', '/schema': 'http://127.0.0.1:8000' } },
})
