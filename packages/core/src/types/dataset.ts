/**
 * Classes, records and datasets: the shape every dataset adapter returns and every other
 * package consumes.
 */

/** The coarse category a fine-grained dataset belongs to; used in prompts and CLIP captions. */
export type Metaclass = 'bird' | 'aircraft' | 'flower' | 'car' | 'dog' | 'object' | (string & {});

export const KNOWN_METACLASSES: readonly Metaclass[] = ['bird', 'aircraft', 'flower', 'car', 'dog', 'object'];

export interface ClassInfo {
  /** Dense index 0..C-1, the label used everywhere. */
  id: number;
  /** Clean human name, e.g. "Black footed Albatross". Used in prompts. */
  name: string;
  /** The name as the dataset spells it (folder name, `classes.txt` entry), if different. */
  rawName?: string;
}

interface RecordBase {
  /** Stable identifier, normally the path relative to the dataset root. */
  id: string;
  /** Class id (index into `Dataset.classes`). */
  label: number;
  /** Free text that comes with the image (CUB descriptions), used as a fine-tuning caption. */
  caption?: string;
}

/** An image that lives in a file. */
export interface FileRecord extends RecordBase {
  path: string;
  bytes?: undefined;
}

/** An image whose encoded bytes are held in memory (parquet datasets). */
export interface BytesRecord extends RecordBase {
  bytes: Uint8Array;
  path?: undefined;
}

export type DatasetRecord = FileRecord | BytesRecord;

export interface Dataset {
  /** Short name, e.g. "cub", "aircraft", "toy". */
  name: string;
  metaclass: Metaclass;
  classes: ClassInfo[];
  train: DatasetRecord[];
  test: DatasetRecord[];
  /** Folder or file the dataset was read from, for messages. */
  root?: string;
}

/** Where a record's bytes come from, for error messages. */
export function describeRecord(record: DatasetRecord): string {
  return record.path ?? `${record.id} (in-memory bytes)`;
}
