/** Classical visual attention: the Itti-Koch-Niebur saliency model, its scanpath, its stimuli, its pictures. */
export {
  BIAS_KEYS,
  type Bias,
  type BiasKey,
  type Channel,
  type IttiOptions,
  type IttiResult,
  ittiSaliency,
  type Normalization,
  parseBias,
  resolveBias,
} from './itti.js';
export { heatmap, overlay, renderPanel, renderScanpath, scanpathSvg, upsampleMap } from './render.js';
export { defaultIorRadius, type Fixation, type ScanpathOptions, scanpath } from './scanpath.js';
export {
  type ItemLook,
  nearestItem,
  SEARCH_KINDS,
  type SearchArray,
  type SearchArrayOptions,
  type SearchItem,
  type SearchKind,
  searchArray,
} from './search_arrays.js';
