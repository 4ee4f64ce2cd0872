// `npm run bench` for @diffmix/onnx: the SD-1.5 size-class check (see large-model.mjs).
// DIFFMIX_LARGE_GB sets the external-data size (default 2.5 GiB; needs ~3× that in free RAM).
await import('./large-model.mjs');
