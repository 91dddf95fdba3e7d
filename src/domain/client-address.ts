const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/
const IPV4_MAPPED = /^::ffff:(\d{1,3}(\.\d{1,3}){3})$/i
/** Groups of an IPv6 address that name its network: a subscriber is given a whole /64. */
const NETWORK_GROUPS = 4

/**
 * The key a client address is throttled under. IPv4 as it is (also written IPv4-mapped as
 * `::ffff:a.b.c.d`); IPv6 by its /64, since one subscriber may send from any of 2^64 addresses
 * of its network. Anything else (a socket with no address) is its own key.
 */
export function addressKey(ip: string): string {
  const mapped = IPV4_MAPPED.exec(ip)
  if (mapped?.[1]) return mapped[1]
  if (IPV4.test(ip) || !ip.includes(':')) return ip
  const groups = expandIpv6(ip.replace(/%.*$/, ''))
  return groups ? `${groups.slice(0, NETWORK_GROUPS).join(':')}::/64` : ip
}

/** The eight 16-bit groups of an IPv6 address, lower-case without leading zeros; null if not one. */
function expandIpv6(ip: string): string[] | null {
  const halves = ip.split('::')
  if (halves.length > 2) return null
  const parse = (part: string | undefined) => (part ? part.split(':') : [])
  const head = parse(halves[0])
  const tail = parse(halves[1])
  const last = tail.length > 0 ? tail : head
  // A dotted IPv4 tail (`64:ff9b::192.0.2.1`) stands for two groups.
  const dotted = last.at(-1)
  if (dotted !== undefined && IPV4.test(dotted)) {
    const [a = 0, b = 0, c = 0, d = 0] = dotted.split('.').map(Number)
    last.splice(-1, 1, ((a << 8) | b).toString(16), ((c << 8) | d).toString(16))
  }
  const missing = 8 - head.length - tail.length
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null
  const groups = [...head, ...Array<string>(halves.length === 1 ? 0 : missing).fill('0'), ...tail]
  if (!groups.every((group) => /^[0-9a-f]{1,4}$/i.test(group))) return null
  return groups.map((group) => Number.parseInt(group, 16).toString(16))
}
