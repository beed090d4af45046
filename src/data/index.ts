/** Datasets, the batch loader and augmentations. */
export { type Image, type ImageDataset, type Sample, stratifiedSubset, subsetDataset } from './dataset.js';
export {
  DEBIAN_FASHION_MNIST_DIR,
  type DownloadOptions,
  defaultCacheDir,
  downloadFashionMnist,
  FASHION_MNIST_CLASSES,
  FASHION_MNIST_FILES,
  FASHION_MNIST_SHA256,
  FASHION_MNIST_URL,
  FashionMnist,
  type IdxArray,
  type LoadFashionMnistOptions,
  loadFashionMnist,
  locateFashionMnist,
  parseIdx,
  readFashionMnistDir,
  type Split,
} from './fashion_mnist.js';
export {
  type ClutterPiece,
  DistortedDataset,
  type Distortion,
  type DistortionOptions,
  drawDistorted,
  type InMemoryImageDataset,
  type LoadDistortedOptions,
  loadDistortedFashionMnist,
} from './distorted_fashion_mnist.js';
export { ImageFolder, type ImageFolderOptions } from './image_folder.js';
export { type Batch, DataLoader, type DataLoaderOptions, deriveSeed } from './loader.js';
export * from './transforms.js';
export {
  FashionSegmentation,
  type FashionSegmentationOptions,
  loadFashionSegmentation,
  loadShapes3d,
  SHAPES3D_CLASSES,
  Shapes3D,
  type Shapes3dOptions,
  type SegmentationDataset,
  type SegmentationSample,
  segmentationBatch,
} from './segmentation.js';
