import { readFileSync, writeFileSync } from 'node:fs'

export const KiB = 1024

export interface MemoryStatus {
  /** Resident set size now, bytes. */
  rss: number
  /** Peak resident set size (high water mark), bytes. */
  hwm: number
}

/** VmRSS and VmHWM of a process, from /proc/<pid>/status (Linux); null once it is gone. */
export function readMemory(pid: number): MemoryStatus | null {
  let text: string
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8')
  } catch {
    return null
  }
  const field = (name: string) => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)
    return match ? Number(match[1]) * KiB : 0
  }
  return { rss: field('VmRSS'), hwm: field('VmHWM') }
}

/**
 * Resets the kernel's peak RSS of a process to its current RSS (`echo 5 > clear_refs`,
 * Linux 4.0+), so VmHWM then covers one phase only. False when not permitted.
 */
export function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5')
    return true
  } catch {
    return false
  }
}

export interface RssReport {
  /** Largest VmRSS seen by sampling. */
  sampledPeak: number
  /** The kernel's VmHWM at the end (since the reset when `peakWasReset`, else since start). */
  kernelPeak: number
  peakWasReset: boolean
  samples: number
  /** VmRSS when sampling started. */
  atStart: number
}

/**
 * Samples a process's memory every `intervalMs` between start() and stop(). The figure to
 * trust is the kernel's VmHWM, which misses no spike; the sampled peak is a cross-check.
 */
export class RssSampler {
  #timer: NodeJS.Timeout | undefined
  #sampledPeak = 0
  #samples = 0
  #atStart = 0
  #peakWasReset = false
  #lastHwm = 0

  constructor(
    readonly pid: number,
    readonly intervalMs = 20,
  ) {}

  /** `fromNow`: VmHWM reset to the RSS now; otherwise it covers the process's whole life. */
  start(fromNow = true): void {
    this.#peakWasReset = fromNow && resetPeak(this.pid)
    const first = readMemory(this.pid)
    this.#atStart = first?.rss ?? 0
    this.#sample()
    this.#timer = setInterval(() => this.#sample(), this.intervalMs)
  }

  /** Stops sampling (again: harmless) and reports. */
  stop(): RssReport {
    if (this.#timer !== undefined) {
      clearInterval(this.#timer)
      this.#timer = undefined
      this.#sample()
    }
    return {
      sampledPeak: this.#sampledPeak,
      kernelPeak: this.#lastHwm,
      peakWasReset: this.#peakWasReset,
      samples: this.#samples,
      atStart: this.#atStart,
    }
  }

  #sample(): void {
    const memory = readMemory(this.pid)
    if (!memory) return
    this.#samples++
    this.#sampledPeak = Math.max(this.#sampledPeak, memory.rss)
    this.#lastHwm = memory.hwm
  }
}
