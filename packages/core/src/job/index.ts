export { JOB_ID_LENGTH, createSynthesisJob, inShard, parseShard, shardOfId, synthesisJobId } from './synthesis-job.js';
export type { Shard, SynthesisJob, SynthesisJobSpec } from './synthesis-job.js';
