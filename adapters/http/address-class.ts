import { BlockList, isIP } from 'node:net';

/** Why an address is not on the public internet: what the SSRF guard names when it refuses one. */
export type AddressClass = 'loopback' | 'private' | 'link-local' | 'metadata' | 'unspecified' | 'cgnat' | 'multicast' | 'reserved';

/** The cloud instance-metadata endpoints (AWS, GCP, Azure, OCI: 169.254.169.254; AWS IPv6; Alibaba): a credential store on the local link. */
export const METADATA_ADDRESSES = ['169.254.169.254', 'fd00:ec2::254', '100.100.100.200'];
/** Names that reach a metadata endpoint through the cloud's own resolver. */
const METADATA_NAMES = new Set(['metadata.google.internal', 'metadata.goog', 'metadata', 'instance-data', 'instance-data.ec2.internal']);

const V4: [AddressClass, string, number][] = [
  ['unspecified', '0.0.0.0', 8],
  ['private', '10.0.0.0', 8],
  ['cgnat', '100.64.0.0', 10],
  ['loopback', '127.0.0.0', 8],
  ['link-local', '169.254.0.0', 16],
  ['private', '172.16.0.0', 12],
  ['reserved', '192.0.0.0', 24],
  ['private', '192.168.0.0', 16],
  ['reserved', '198.18.0.0', 15],
  ['multicast', '224.0.0.0', 4],
  // 240/4 is reserved, and holds the broadcast address 255.255.255.255.
  ['reserved', '240.0.0.0', 4],
];
const V6: [AddressClass, string, number][] = [
  ['unspecified', '::', 128],
  ['loopback', '::1', 128],
  ['private', 'fc00::', 7],
  ['link-local', 'fe80::', 10],
  ['private', 'fec0::', 10],
  ['multicast', 'ff00::', 8],
];

const blocks = new Map<AddressClass, BlockList>();
/** All of them in one list: a public address, the common case, costs one check rather than one per class. */
const anyBlock = new BlockList();
for (const [kind, net, prefix] of [...V4, ...V6]) {
  if (!blocks.has(kind)) blocks.set(kind, new BlockList());
  const type = isIP(net) === 6 ? 'ipv6' : 'ipv4';
  blocks.get(kind)!.addSubnet(net, prefix, type);
  anyBlock.addSubnet(net, prefix, type);
}
const metadata = new BlockList();
for (const a of METADATA_ADDRESSES) metadata.addAddress(a, isIP(a) === 6 ? 'ipv6' : 'ipv4');

/**
 * The class of an IP address that must not be reached by default, or undefined for a public one. An IPv6 address
 * that carries an IPv4 one (mapped `::ffff:127.0.0.1`, compatible `::127.0.0.1`, NAT64 `64:ff9b::`, 6to4 `2002::`)
 * is classed by the IPv4 address it reaches. Numeric forms of IPv4 (`2130706433`, `0x7f.1`) are not addresses
 * here: a URL's host is read by the WHATWG parser first, which writes them in dotted decimal.
 */
export function classifyAddress(address: string): AddressClass | undefined {
  const family = isIP(address);
  if (family === 0) throw new Error(`not an IP address: ${address}`);
  if (family === 6) {
    const embedded = embeddedIPv4(address);
    if (embedded) return classifyAddress(embedded);
  }
  const type = family === 6 ? 'ipv6' : 'ipv4';
  if (!anyBlock.check(address, type)) return undefined;
  if (metadata.check(address, type)) return 'metadata';
  for (const [kind, list] of blocks) if (list.check(address, type)) return kind;
  return undefined;
}

/** Whether a host name (lowercase, trailing dot removed) names a metadata endpoint. */
export const isMetadataName = (host: string): boolean => METADATA_NAMES.has(host);

/** The IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4), if it carries one. */
function embeddedIPv4(address: string): string | undefined {
  const words = ipv6Words(address);
  const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  const zeros = (from: number, to: number) => words.slice(from, to).every((w) => w === 0);
  if (zeros(0, 5) && words[5] === 0xffff) return v4(words[6]!, words[7]!);
  // ::a.b.c.d (deprecated "compatible"), but not :: and ::1 themselves.
  if (zeros(0, 6) && words[6] !== 0) return v4(words[6]!, words[7]!);
  if (words[0] === 0x64 && words[1] === 0xff9b && zeros(2, 6)) return v4(words[6]!, words[7]!);
  if (words[0] === 0x2002) return v4(words[1]!, words[2]!);
  return undefined;
}

/** The eight 16-bit words of an IPv6 address (already checked by isIP), `::` expanded, a dotted tail read. */
function ipv6Words(address: string): number[] {
  const text = address.replace(/%.*$/, '');
  const tail = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  const hexPart = tail ? `${text.slice(0, tail.index)}${((+tail[1]! << 8) | +tail[2]!).toString(16)}:${((+tail[3]! << 8) | +tail[4]!).toString(16)}` : text;
  const [head, rest] = hexPart.split('::') as [string, string | undefined];
  const parse = (part: string) => (part ? part.split(':').map((w) => parseInt(w, 16)) : []);
  const left = parse(head);
  const right = rest === undefined ? [] : parse(rest);
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}
