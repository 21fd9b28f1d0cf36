// Reads a whole stream into memory, or gives up once it passes `limit` bytes (returning
// undefined): every body aivault buffers is bounded, and each caller names its own error.

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
