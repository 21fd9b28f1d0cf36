// Reads a whole stream into memory, or gives up once it passes `limit` bytes (returning
// undefined): every body aivault buffers is bounded, and each caller names its own error.

/**
 * A whole stream that something upstream of it already bounds (an invoke's answer is cut
 * off at the capability's response limit by the broker's scrubber).
 */
export async function readAll(stream: AsyncIterable<unknown>): Promise<Buffer> {
  return (await readCapped(stream, Number.POSITIVE_INFINITY))!;
}

export async function readCapped(stream: AsyncIterable<unknown>, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > limit) return undefined;
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}
