// ONNX Runtime session options in one place: execution providers pass through, threads are
// exposed, and sessions are created from bytes (the model plus appended tap outputs).
import * as ort from 'onnxruntime-node';

export interface SessionSettings {
  /** Execution providers in order of preference, e.g. ['cuda', 'cpu']; default ['cpu']. */
  executionProviders?: string[];
  /** ONNX Runtime intra-op threads; default: ONNX Runtime's own choice (all cores). */
  intraOpThreads?: number;
  interOpThreads?: number;
  /**
   * Whether ONNX Runtime's threads spin while they wait for work (default true, ONNX Runtime's own
   * default). Spinning saves a wake-up per run but keeps a core busy between runs; a service whose
   * HTTP work shares the cores turns it off (nfp serve does, for its inference thread).
   */
  allowSpinning?: boolean;
}

export async function createSession(bytes: Uint8Array, settings: SessionSettings = {}): Promise<ort.InferenceSession> {
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: settings.executionProviders ?? ['cpu'],
    graphOptimizationLevel: 'all',
  };
  if (settings.intraOpThreads !== undefined) options.intraOpNumThreads = settings.intraOpThreads;
  if (settings.interOpThreads !== undefined) options.interOpNumThreads = settings.interOpThreads;
  if (settings.allowSpinning === false)
    options.extra = { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } };
  return ort.InferenceSession.create(bytes, options);
}
