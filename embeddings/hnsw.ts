import type hnswlib from 'hnswlib-node';

/**
 * Inserts `v` under `label` into an HNSW index: into a slot that markDelete freed when
 * `reuseFree`, otherwise appended, doubling the capacity (at least 1024) when it is full.
 */
export function insertPoint(h: hnswlib.HierarchicalNSW, v: Float32Array, label: number, reuseFree: boolean): void {
  const arr = Array.from(v);
  if (reuseFree) {
    h.addPoint(arr, label, true);
    return;
  }
  if (h.getCurrentCount() >= h.getMaxElements()) h.resizeIndex(Math.max(1024, h.getMaxElements() * 2));
  h.addPoint(arr, label, false);
}
