/**
 * Times attentionFlow on random ViT-B-sized attention: 12 layers, 12 heads, 197 tokens (class token
 * + 14 x 14 patches), one image, the class token as output: 197 max-flows on 12 x 197 nodes.
 *   [SCALE=2] [DISCARD=0] node --import tsx scripts/attention_flow_timing.ts [layers] [tokens]
 * SCALE is the logit scale of the random attention (larger: peakier), DISCARD the discard ratio.
 */
import { attentionFlow, manualSeed, randn } from '../src/index.js';

const layers = Number(process.argv[2] ?? 12);
const tokens = Number(process.argv[3] ?? 197);
const heads = 12;
manualSeed(0);
// Softmax of N(0, 2^2) logits: peakier than uniform, dense like real attention.
const attentions = Array.from({ length: layers }, () =>
  randn([1, heads, tokens, tokens])
    .mul(Number(process.env.SCALE ?? 2))
    .softmax(-1),
);
const start = performance.now();
const discardRatio = Number(process.env.DISCARD ?? 0);
const result = attentionFlow(attentions, { prefixTokens: 1, gridSize: [1, tokens - 1], discardRatio });
const seconds = (performance.now() - start) / 1000;
const flows = result.flow.toFloat32Array();
let sum = 0;
for (const v of flows) sum += v;
console.log(
  `attentionFlow: ${layers} layers x ${tokens} tokens (${tokens} max-flows, discard ${discardRatio}): ${seconds.toFixed(2)} s; ` +
    `flow to the class token from all inputs sums to ${sum.toFixed(4)}`,
);
