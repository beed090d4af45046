/**
 * Element types. float32 is the compute type; integer tensors hold indices and labels; bool holds masks.
 * int64 values are stored in a Float64Array: exact up to 2^53, which covers every index and label,
 * and arithmetic on them stays plain JavaScript numbers (no BigInt on hot paths).
 */
export type DType = 'float32' | 'int32' | 'int64' | 'bool';
export type Storage = Float32Array | Int32Array | Float64Array | Uint8Array;

export function allocStorage(dtype: DType, size: number): Storage {
  switch (dtype) {
    case 'float32':
      return new Float32Array(size);
    case 'int32':
      return new Int32Array(size);
    case 'int64':
      return new Float64Array(size);
    case 'bool':
      return new Uint8Array(size);
  }
}

/**
 * A float32 array with unspecified contents, for a kernel output that is written in full: it skips
 * the zero fill of `new Float32Array(n)`, one pass over memory per output, which adds up to a tenth of
 * a training step. Small sizes, and runtimes without Node's Buffer, get a zeroed array.
 */
export function emptyFloat32(size: number): Float32Array {
  if (size < 4096 || typeof Buffer === 'undefined') return new Float32Array(size);
  const bytes = Buffer.allocUnsafeSlow(size * 4);
  return new Float32Array(bytes.buffer, bytes.byteOffset, size);
}

export function dtypeOfStorage(data: Storage): DType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Float64Array) return 'int64';
  return 'bool';
}

export function isIntegerDType(dtype: DType): boolean {
  return dtype === 'int32' || dtype === 'int64';
}
