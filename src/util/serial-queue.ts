/** Runs async jobs one at a time in push order; `idle()` resolves when the queue is empty. */
export class SerialQueue {
  private tail: Promise<void> = Promise.resolve();
  private pending = 0;

  constructor(private readonly onError: (e: unknown) => void) {}

  push(job: () => Promise<void>): void {
    this.pending += 1;
    this.tail = this.tail
      .then(job)
      .catch(this.onError)
      .finally(() => {
        this.pending -= 1;
      });
  }

  get size(): number {
    return this.pending;
  }

  async idle(): Promise<void> {
    while (this.pending > 0) await this.tail;
  }
}
