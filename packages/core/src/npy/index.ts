export { formatNpy, parseNpy } from './npy.js';
export type { NpyArray, NpyData } from './npy.js';
