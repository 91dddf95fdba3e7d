import { describe, expect, it } from 'vitest'
import { inTraceOrder, PageCacheModel, parseTrace, type Syscall, socketAnswer } from './syscall-trace.js'

const ROOT = '/d'

/** Replays `lines` (strace -f -tt -yy, without the pid and time) and answers the model. */
function replay(lines: string[]): { model: PageCacheModel; calls: Syscall[] } {
  const log = lines.map((line) => (/^\d+ /.test(line) ? line : `100 ${line}`)).join('\n')
  const withTimes = log.replace(/^(\d+) /gm, '$1 12:00:00.000000 ')
  const calls = parseTrace(withTimes)
  const model = new PageCacheModel(ROOT)
  for (const { phase, call } of inTraceOrder(calls)) {
    if (phase === 'begin') model.begin(call)
    else model.end(call)
  }
  return { model, calls }
}

const whys = (model: PageCacheModel, path: string) => model.volatile(path).map((v) => v.why.split(' ')[0])

const PUT = [
  'openat(AT_FDCWD</cwd>, "/d/tmp/x", O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC, 0666) = 5</d/tmp/x>',
  'writev(5</d/tmp/x>, [{iov_base="abc", iov_len=3}], 1) = 3',
  'fsync(5</d/tmp/x>) = 0',
  'mkdir("/d/ab", 0777) = 0',
  'openat(AT_FDCWD</cwd>, "/d", O_RDONLY|O_CLOEXEC) = 6</d>',
  'fsync(6</d>) = 0',
  'link("/d/tmp/x", "/d/ab/x.1") = 0',
  'unlink("/d/tmp/x") = 0',
  'openat(AT_FDCWD</cwd>, "/d/ab", O_RDONLY|O_CLOEXEC) = 7</d/ab>',
  'fsync(7</d/ab>) = 0',
]

describe('the page-cache model of an strace log', () => {
  it('counts a file durable once its bytes and every name down to it were fsynced', () => {
    expect(replay(PUT).model.volatile('/d/ab/x.1')).toEqual([])
  })

  it('follows bytes across a hard link: unsynced before the link, unsynced after it', () => {
    const { model } = replay(PUT.filter((line) => !line.startsWith('fsync(5')))
    expect(whys(model, '/d/ab/x.1')).toEqual(['bytes'])
  })

  it('sees a name whose directory, or whose parent directory, was not fsynced since', () => {
    expect(whys(replay(PUT.slice(0, -1)).model, '/d/ab/x.1')).toEqual(['name'])
    expect(whys(replay(PUT.filter((line) => line !== 'fsync(6</d>) = 0')).model, '/d/ab/x.1')).toEqual([
      'name',
    ])
  })

  it('does not count a write that ended after the fsync started, on another thread', () => {
    const { model } = replay([
      '100 openat(AT_FDCWD</cwd>, "/d/f", O_RDWR|O_CREAT, 0644) = 5</d/f>',
      '101 openat(AT_FDCWD</cwd>, "/d", O_RDONLY) = 6</d>',
      '101 fsync(6</d>) = 0',
      '100 pwrite64(5</d/f>, "x", 1, 0 <unfinished ...>',
      '101 fsync(5</d/f> <unfinished ...>',
      '100 <... pwrite64 resumed>) = 1',
      '101 <... fsync resumed>) = 0',
    ])
    expect(whys(model, '/d/f')).toEqual(['bytes'])
  })

  it('ignores calls that failed and paths outside the root', () => {
    const { model } = replay([
      ...PUT,
      'link("/d/tmp/y", "/d/ab/x.1") = -1 EEXIST (File exists)',
      'mkdir("/d/ab", 0777) = -1 EEXIST (File exists)',
      'openat(AT_FDCWD</cwd>, "/elsewhere/f", O_WRONLY|O_CREAT, 0666) = 8</elsewhere/f>',
      'write(8</elsewhere/f>, "x", 1) = 1',
    ])
    expect(model.volatile('/d/ab/x.1')).toEqual([])
    expect(model.pathsNamed((name) => name === 'f')).toEqual([])
  })

  it('finds the start of an HTTP answer written to a socket, not one written to a file', () => {
    const [answer, file] = parseTrace(
      [
        '100 12:00:00.000000 writev(9<TCP:[127.0.0.1:1->127.0.0.1:2]>, [{iov_base="HTTP/1.1 200 OK\\r\\n\\r\\n{\\"index\\":0}", iov_len=30}], 1) = 30',
        '100 12:00:00.000000 write(5</d/f>, "HTTP/1.1 200 OK", 15) = 15',
      ].join('\n'),
    )
    expect(socketAnswer(answer as Syscall)).toMatchObject({
      status: 200,
      text: expect.stringContaining('{"index":0}'),
    })
    expect(socketAnswer(file as Syscall)).toBeUndefined()
  })
})
