export { type BuildDemoImagesOptions, buildDemoImages, type DemoImages, parseKernelDependency } from './build.js';
export { READY_MARKER } from './guest-files.js';
