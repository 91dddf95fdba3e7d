// Uploads one file to a tus server with tus-js-client in Node, as its docs show: the input
// is an fs.ReadStream (tus-js-client then re-opens the file by path for each PATCH and never
// buffers it), everything else at its defaults, so chunkSize = Infinity (one PATCH for the
// whole file) and parallelUploads = 1. Only retries are off: a failure must not hide in a
// retry's time.
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { basename } from 'node:path'
import { Upload } from 'tus-js-client'
import { clientMain } from '../lib/child.js'
import { now } from '../lib/timing.js'

interface Config {
  endpoint: string
  file: string
  /** Default (undefined): tus-js-client's own default, Infinity. */
  chunkSize?: number
}

export interface TusUploadResult {
  bytes: number
  ms: number
  url: string | null
}

clientMain<Config, TusUploadResult>(async (config) => {
  const { size } = await stat(config.file)
  const input = createReadStream(config.file)
  const start = now()
  const upload = await new Promise<Upload>((resolve, reject) => {
    const upload: Upload = new Upload(input as unknown as Buffer, {
      endpoint: config.endpoint,
      metadata: { filename: basename(config.file) },
      retryDelays: null,
      ...(config.chunkSize ? { chunkSize: config.chunkSize } : {}),
      onSuccess: () => resolve(upload),
      onError: reject,
    })
    upload.start()
  })
  const ms = now() - start
  input.destroy()
  return { bytes: size, ms, url: upload.url }
})
