import { StringDecoder } from 'node:string_decoder'
import { Transform, type TransformCallback } from 'node:stream'
import { usedTokens } from './chat.js'

/** A `data:` line longer than this is content, never the usage chunk; it is passed on without being kept. */
const MAX_LINE_CHARS = 64 * 1024

/**
 * Passes an OpenAI server-sent-event stream through unchanged, chunk by chunk as it arrives, and remembers the
 * `usage.total_tokens` of the chunk that carries it (the last one). Hand-written: an SSE parser library would
 * re-frame the events, and the bytes must reach the client exactly as the model sent them.
 */
export class UsageMeter extends Transform {
  used: number | undefined
  private readonly decoder = new StringDecoder('utf8')
  private partial = ''

  override _transform (chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.scan(this.decoder.write(chunk))
    callback(null, chunk)
  }

  override _flush (callback: TransformCallback): void {
    this.scan(this.decoder.end() + '\n')
    callback()
  }

  private scan (text: string): void {
    const lines = (this.partial + text).split('\n')
    this.partial = lines.pop() ?? ''
    if (this.partial.length > MAX_LINE_CHARS) this.partial = ''
    for (const line of lines) {
      if (!line.startsWith('data:') || !line.includes('"usage"')) continue
      try {
        const used = usedTokens(JSON.parse(line.slice(5)).usage)
        if (used !== undefined) this.used = used
      } catch {}
    }
  }
}
