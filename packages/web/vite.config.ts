import tailwindcss from '@tailwindcss/vite';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';
import { apiLite } from './api-lite.ts';

// The manager serves dist/ at `/`; in dev, Vite proxies the API (HTTP and WebSocket) to a local manager.
export default defineConfig({
  plugins: [apiLite(), react(), tailwindcss()],
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 600 },
  server: {
    proxy: { '/v1': { target: 'http://127.0.0.1:18080', ws: true } },
  },
});
