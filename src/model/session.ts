// ONNX Runtime session options in one place: execution providers pass through, threads are
// exposed, and sessions are created from bytes (the model plus appended tap outputs).
import * as ort from 'onnxruntime-node';

export interface SessionSettings {
  /** Execution providers in order of preference, e.g. ['cuda', 'cpu']; default ['cpu']. */
  executionProviders?: string[];
  /** ONNX Runtime intra-op threads; default: ONNX Runtime's own choice (all cores). */
  intraOpThreads?: number;
  interOpThreads?: number;
}

export async function createSession(bytes: Uint8Array, settings: SessionSettings = {}): Promise<ort.InferenceSession> {
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: settings.executionProviders ?? ['cpu'],
    graphOptimizationLevel: 'all',
  };
  if (settings.intraOpThreads !== undefined) options.intraOpNumThreads = settings.intraOpThreads;
  if (settings.interOpThreads !== undefined) options.interOpNumThreads = settings.interOpThreads;
  return ort.InferenceSession.create(bytes, options);
}
