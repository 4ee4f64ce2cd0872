export type { SerializeGraphOptions } from './convert.js';
export { createGraphSession, graphFromOnnxModel, graphToOnnxModel, serializeGraph } from './convert.js';
export type { Attr, AttrInput, Dim, GraphNode, Tensor, ValueInfo } from './graph.js';
export { attr, attrFloat, attrInt, attrInts, attrString, Graph, numel, tensorOf } from './graph.js';
export { broadcastShapes, constantValues, inferShapes, intValues } from './infer.js';
