/**
 * Level-5 MAT-file reading (and a small writer), for the dataset indexes shipped as `.mat` files.
 */
export {
  describeMatValue,
  type MatWhere,
  matToIntegers,
  matToNumber,
  matToNumbers,
  matToRecords,
  matToString,
  matToStrings,
  matVariable,
} from './convert.js';
export { formatDims, MAT_V73_MESSAGE, readMat, readMatFile } from './read.js';
export type {
  MatCell,
  MatChar,
  MatFile,
  MatHeader,
  MatLogical,
  MatNumeric,
  MatNumericArray,
  MatNumericArrayMap,
  MatNumericClass,
  MatStruct,
  MatUnsupported,
  MatValue,
} from './types.js';
export { matCell, matChar, matDouble, matLogical, matNumeric, matStruct, type WriteMatOptions, writeMat } from './write.js';
