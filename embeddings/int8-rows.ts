/**
 * Unit vectors kept as int8 codes with one float scale per row (a quarter of float32's memory),
 * in one growing buffer with reusable rows. Dot products against a float32 vector lose ~1% of
 * the largest component: plenty for ranking re-scores, which only compare candidates.
 */
export class Int8Rows {
  private codes: Int8Array;
  private scales: Float32Array;
  private used = 0;
  private readonly freeRows: number[] = [];

  constructor(
    readonly dim: number,
    capacity = 1024,
  ) {
    this.codes = new Int8Array(capacity * dim);
    this.scales = new Float32Array(capacity);
  }

  /** Stores `v`; returns its row. */
  add(v: Float32Array): number {
    const row = this.freeRows.pop() ?? this.used++;
    if (row >= this.scales.length) this.grow();
    this.set(row, v);
    return row;
  }

  set(row: number, v: Float32Array): void {
    let max = 0;
    for (let i = 0; i < this.dim; i++) max = Math.max(max, Math.abs(v[i]!));
    const scale = max > 0 ? max / 127 : 1;
    const at = row * this.dim;
    for (let i = 0; i < this.dim; i++) this.codes[at + i] = Math.round(v[i]! / scale);
    this.scales[row] = scale;
  }

  free(row: number): void {
    this.freeRows.push(row);
  }

  /** The row as float32 (approximately the vector that was added). */
  get(row: number): Float32Array {
    const out = new Float32Array(this.dim);
    const at = row * this.dim;
    const s = this.scales[row]!;
    for (let i = 0; i < this.dim; i++) out[i] = this.codes[at + i]! * s;
    return out;
  }

  dot(row: number, q: Float32Array): number {
    const c = this.codes;
    const at = row * this.dim;
    let s = 0;
    for (let i = 0; i < this.dim; i++) s += c[at + i]! * q[i]!;
    return s * this.scales[row]!;
  }

  /** Bytes held (codes and scales). */
  get bytes(): number {
    return this.codes.byteLength + this.scales.byteLength;
  }

  private grow(): void {
    const codes = new Int8Array(this.codes.length * 2);
    codes.set(this.codes);
    const scales = new Float32Array(this.scales.length * 2);
    scales.set(this.scales);
    this.codes = codes;
    this.scales = scales;
  }
}
