/**
 * Imported first by the CLI, before anything can start libuv's thread pool (which reads
 * UV_THREADPOOL_SIZE once, when it first runs work). Every file-system call of the blob store and
 * every WAL sync runs on that pool, and an fsync holds its thread for milliseconds: with libuv's
 * default of 4 threads, 16 clients uploading small files wait in line for four fsyncs at a time,
 * where the file system would have committed theirs together. An operator's own value is kept.
 */
const FILE_SYSTEM_THREADS = 16

process.env.UV_THREADPOOL_SIZE ??= String(FILE_SYSTEM_THREADS)
