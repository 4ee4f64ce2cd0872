export { KNOWN_METACLASSES, describeRecord } from './dataset.js';
export type { BytesRecord, ClassInfo, Dataset, DatasetRecord, FileRecord, Metaclass } from './dataset.js';
