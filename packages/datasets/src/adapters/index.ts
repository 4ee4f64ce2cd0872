export { cleanClassName } from './common.js';
