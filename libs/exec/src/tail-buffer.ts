/** Keeps the last `capacity` characters of a stream of text; older text is dropped as new text arrives. */
export class TailBuffer {
  private chunks: string[] = [];
  private length = 0;

  constructor(private readonly capacity: number) {}

  push(text: string): void {
    this.chunks.push(text);
    this.length += text.length;
    while (this.length - (this.chunks[0]?.length ?? 0) >= this.capacity) {
      this.length -= (this.chunks.shift() as string).length;
    }
  }

  /** The last `max` characters (default: all that is kept). */
  text(max = this.capacity): string {
    const all = this.chunks.join('');
    return all.length <= max ? all : all.slice(all.length - max);
  }
}
