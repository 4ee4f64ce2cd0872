/**
 * Handing a model to ONNX Runtime from memory.
 *
 * onnxruntime-node 1.30 accepts `InferenceSession.create(modelBytes, { externalData: [{ path, data }] })`
 * (checked: outputs identical to loading the file). ONNX Runtime may keep pointing into those buffers
 * for the session's lifetime (it does when graph optimisation is off), so {@link createOrtSession}
 * ties them to the session object. This package does not depend on onnxruntime-node: the caller
 * passes its `ort` module (onnxruntime-node, or onnxruntime-web / -common with the same API).
 */
import { InvalidArgumentError } from '@diffmix/core';
import type { ExternalDataFile } from './external.js';
import { type OnnxModel, PROTOBUF_LIMIT_BYTES, type SerializedOnnxModel, type SerializeOptions } from './model.js';

/** The part of an onnxruntime module used here. */
export interface OrtModuleLike<S> {
  InferenceSession: {
    create(buffer: Uint8Array, options?: object): Promise<S>;
  };
}

export interface CreateSessionOptions extends SerializeOptions {
  /** ONNX Runtime session options (execution providers, threads, graph optimisation, …). */
  sessionOptions?: object;
  /**
   * When ONNX Runtime refuses in-memory external data (an onnxruntime build without the option),
   * retry with the weights inlined if the model fits in one protobuf (default true).
   */
  inlineFallback?: boolean;
}

/** Buffers ONNX Runtime may point into, kept alive as long as the session object. */
const keepAlive = new WeakMap<object, ExternalDataFile[]>();

/** Session-creation inputs: `ort.InferenceSession.create(x.model, { ...yourOptions, ...x.options })`. */
export function ortSessionInput(serialized: SerializedOnnxModel): {
  model: Uint8Array;
  options: { externalData: ExternalDataFile[] };
} {
  return { model: serialized.model, options: { externalData: serialized.externalData } };
}

/**
 * Creates an ONNX Runtime session from an {@link OnnxModel} (or already serialised bytes) without
 * touching the disk: weights go as in-memory external data, so no protobuf above 2 GiB is ever built.
 */
export async function createOrtSession<S extends object>(
  ort: OrtModuleLike<S>,
  model: OnnxModel | SerializedOnnxModel,
  options: CreateSessionOptions = {},
): Promise<S> {
  if ('serialize' in model) await model.loadExternalData(); // read weights without blocking the event loop
  const serialized = 'serialize' in model ? model.serialize(options) : model;
  const sessionOptions = options.sessionOptions ?? {};
  let session: S;
  if (serialized.externalData.length === 0) {
    session = await ort.InferenceSession.create(serialized.model, sessionOptions);
  } else {
    try {
      session = await ort.InferenceSession.create(serialized.model, { ...sessionOptions, externalData: serialized.externalData });
    } catch (error) {
      const total = serialized.externalData.reduce((a, f) => a + f.data.byteLength, serialized.model.byteLength);
      const externalProblem = /external/i.test(String((error as Error)?.message ?? error));
      if (options.inlineFallback === false || !externalProblem || !('serialize' in model)) throw error;
      if (total >= PROTOBUF_LIMIT_BYTES) {
        throw new InvalidArgumentError(
          'externalData',
          `this ONNX Runtime does not accept in-memory external data and the model (${total} bytes) is too large to inline: ${(error as Error).message}`,
        );
      }
      const inline = model.serialize({ ...options, externalData: 'inline' });
      return ort.InferenceSession.create(inline.model, sessionOptions);
    }
  }
  keepAlive.set(session, serialized.externalData);
  return session;
}
