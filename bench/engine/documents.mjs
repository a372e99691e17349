// bench/engine: the input every peer gets. makeDocuments(n) returns n Buffers of UTF-8
// JSON text, about 1 KB each, the same for every call with the same n (a seeded PRNG, no
// clock, no Math.random). Each document is an order:
//   { id, createdAt, status, currency, customer: { id, name, email, tier, address: {...} },
//     items: [{ sku, name, price, qty }, ...3 to 7 of them], shipping, payment, tags, note }
// Prices are drawn so that $sum(items.price) is above 100 for about half of the documents
// (the decision step's two paths carry about the same load).
//   node bench/engine/documents.mjs [n]   prints the size and the share above 100

const FIRST = ['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Frances', 'Ken', 'Margaret', 'Niklaus', 'Radia', 'Tony'];
const LAST = ['Lovelace', 'Hopper', 'Turing', 'Dijkstra', 'Liskov', 'Knuth', 'Allen', 'Thompson', 'Hamilton', 'Wirth', 'Perlman', 'Hoare'];
const CITIES = ['Lisbon', 'Porto', 'Madrid', 'Lyon', 'Ghent', 'Utrecht', 'Bergen', 'Tartu', 'Graz', 'Brno', 'Kraków', 'Cork'];
const STREETS = ['Harbour Road', 'Mill Lane', 'Station Street', 'Rua das Flores', 'Church Walk', 'Market Square', 'Canal Side', 'Orchard Way'];
const PRODUCTS = ['Copper kettle', 'Linen tea towel', 'Walnut cutting board', 'Enamel mug', 'Cast iron skillet', 'Ceramic bowl', 'Beeswax candle', 'Wool throw', 'Glass carafe', 'Oak spoon set', 'Stoneware plate', 'Bamboo tray'];
const TAGS = ['gift', 'express', 'fragile', 'repeat-customer', 'newsletter', 'b2b', 'marketplace', 'mobile', 'promo', 'backorder'];
const NOTES = [
  'Please leave the parcel with the neighbour if nobody answers the door.',
  'Deliver between 9:00 and 17:00 on weekdays; the reception closes for lunch.',
  'Gift wrap each item separately and leave out the invoice.',
  'Ring twice. The bell on the left is broken, use the one on the right.',
];

// mulberry32: a small, fast, seeded PRNG; the same seed gives the same documents
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function makeDocument(i, random) {
  const pick = (list) => list[Math.floor(random() * list.length)];
  const first = pick(FIRST);
  const last = pick(LAST);
  const customerNo = 1 + Math.floor(random() * 50000);
  const count = 3 + Math.floor(random() * 5); // 3..7 items
  const items = [];
  for (let k = 0; k < count; k++) {
    const n = 1 + Math.floor(random() * 900);
    items.push({
      sku: `SKU-${String(n).padStart(5, '0')}-${String.fromCharCode(65 + (n % 26))}`,
      name: pick(PRODUCTS),
      // 1.00 to 40.99 in cents: 5 items on average make a median order of about 100
      price: (100 + Math.floor(random() * 4000)) / 100,
      qty: 1 + Math.floor(random() * 4),
    });
  }
  const day = 1 + Math.floor(random() * 28);
  return {
    id: `ORD-${String(i + 1).padStart(8, '0')}`,
    createdAt: `2026-11-${String(day).padStart(2, '0')}T${String(Math.floor(random() * 24)).padStart(2, '0')}:${String(Math.floor(random() * 60)).padStart(2, '0')}:00Z`,
    status: pick(['new', 'paid', 'packed']),
    currency: 'EUR',
    customer: {
      id: `C-${String(customerNo).padStart(6, '0')}`,
      name: `${first} ${last}`,
      email: `${first}.${last}${customerNo}@example.org`.toLowerCase(),
      tier: pick(['bronze', 'silver', 'gold']),
      address: { street: `${1 + Math.floor(random() * 200)} ${pick(STREETS)}`, city: pick(CITIES), postcode: String(10000 + Math.floor(random() * 89999)), country: pick(['PT', 'ES', 'FR', 'BE', 'NL', 'NO', 'EE', 'AT', 'CZ', 'PL', 'IE']) },
    },
    items,
    shipping: {
      method: pick(['standard', 'express', 'pickup']),
      carrier: pick(['CTT', 'DHL', 'PostNL', 'Posten', 'UPS']),
      trackingNo: `TRK${String(Math.floor(random() * 1e10)).padStart(10, '0')}`,
      address: { street: `${1 + Math.floor(random() * 200)} ${pick(STREETS)}`, city: pick(CITIES), postcode: String(10000 + Math.floor(random() * 89999)) },
    },
    payment: { method: pick(['card', 'sepa', 'paypal']), reference: `PAY-${Math.floor(random() * 1e12).toString(36).toUpperCase()}`, authorisedAt: `2026-11-${String(day).padStart(2, '0')}T23:59:00Z` },
    tags: [pick(TAGS), pick(TAGS)],
    note: pick(NOTES),
  };
}

/**
 * n documents as Buffers of UTF-8 JSON text; deterministic. The Buffers are views into
 * 16 MiB slabs, so the input costs its bytes and little more (Buffer.from per document
 * would leave half-used 8 KiB pool chunks behind: about 150 MB for 94 MB of text).
 */
export function makeDocuments(n, seed = 0x51a4c) {
  const random = prng(seed);
  const out = new Array(n);
  const SLAB = 16 * 1024 * 1024;
  let slab = Buffer.allocUnsafeSlow(SLAB);
  let used = 0;
  for (let i = 0; i < n; i++) {
    const text = JSON.stringify(makeDocument(i, random));
    const length = Buffer.byteLength(text, 'utf8');
    if (used + length > SLAB) {
      slab = Buffer.allocUnsafeSlow(SLAB);
      used = 0;
    }
    slab.write(text, used, 'utf8');
    out[i] = slab.subarray(used, used + length);
    used += length;
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const n = Number(process.argv[2] ?? 100000);
  const docs = makeDocuments(n);
  let bytes = 0, above = 0, min = Infinity, max = 0;
  for (const b of docs) {
    bytes += b.length; min = Math.min(min, b.length); max = Math.max(max, b.length);
    const sum = JSON.parse(b).items.reduce((s, it) => s + it.price, 0);
    if (sum > 100) above++;
  }
  console.log(JSON.stringify({ documents: n, averageBytes: Math.round(bytes / n), minBytes: min, maxBytes: max, totalMb: +(bytes / 2 ** 20).toFixed(1), sumAbove100: +(above / n).toFixed(3) }));
  console.log(docs[0].toString());
}
