/**
 * How to read a model's captured attention: token layout (prefix tokens, patch grid, patch size) or
 * Swin's windows, from the public configuration of the model (never its weights or internals).
 */

export type AttentionLayout =
  | {
      kind: 'tokens';
      /** class / distillation / register tokens in front of the patches */
      prefixTokens: number;
      gridSize: [number, number];
      patchSize: [number, number];
      /** the rows maps are read from: the class token, DeiT's class and distillation tokens, or all rows */
      tokenIndex: number[] | 'mean';
      /** names for those maps, e.g. ['cls', 'dist'] */
      tokenNames: string[];
    }
  | {
      kind: 'swin';
      gridSize: [number, number];
      patchSize: [number, number];
      windowSize: number;
      depths: number[];
    };

interface TokenModel {
  family?: string;
  numPrefixTokens: number;
  patchSize: number;
  /** null when the model has no class token (its prefix is registers only, or nothing) */
  cls_token?: unknown;
  dist_token?: unknown;
}

interface SwinModel {
  family: 'swin';
  config: { patchSize: number; windowSize: number; depths: number[] };
}

/** The layout for a model fed an input of `height` x `width` pixels. */
export function attentionLayout(model: object, height: number, width: number): AttentionLayout {
  const m = model as Partial<TokenModel> & Partial<SwinModel>;
  if (typeof m.numPrefixTokens === 'number' && typeof m.patchSize === 'number') {
    const p = m.patchSize;
    const gridSize: [number, number] = [Math.floor(height / p), Math.floor(width / p)];
    const distilled = m.dist_token !== undefined && m.dist_token !== null;
    const hasClassToken = m.numPrefixTokens > 0 && m.cls_token !== null;
    const prefixTokens = m.numPrefixTokens;
    const tokenIndex = !hasClassToken ? 'mean' : distilled ? [0, 1] : [0];
    const tokenNames = !hasClassToken ? ['mean'] : distilled ? ['cls', 'dist'] : ['cls'];
    return { kind: 'tokens', prefixTokens, gridSize, patchSize: [p, p], tokenIndex, tokenNames };
  }
  if (m.family === 'swin' && m.config && typeof m.config.windowSize === 'number') {
    const p = m.config.patchSize;
    return {
      kind: 'swin',
      gridSize: [Math.floor(height / p), Math.floor(width / p)],
      patchSize: [p, p],
      windowSize: m.config.windowSize,
      depths: [...m.config.depths],
    };
  }
  const family = typeof m.family === 'string' ? m.family : model.constructor?.name;
  throw new Error(
    `explain: model family '${family}' has no attention maps to explain; use a ViT, DeiT or Swin model`,
  );
}
