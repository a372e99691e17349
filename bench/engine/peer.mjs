// bench/engine: what every peer script shares. A peer is run as
//   node bench/engine/<peer>.mjs <docs> [options]
// in a process of its own, builds its input with makeDocuments(docs) (documents.mjs), starts
// the clock just before the first document goes in and stops it when the last one has been
// counted at an end, then prints exactly one JSON line on stdout (anything else goes to stderr):
//   { "docsPerSecond": number, "peakRssMb": number, "seconds": number,
//     "cpuSeconds"?: number, "startRssMb"?: number, "ifTrue"?: number, "ifFalse"?: number }
// docsPerSecond = docs / seconds; peakRssMb = the process's peak resident set size
// (process.resourceUsage().maxRSS, so it includes the input documents, about 100 MB for
// 100,000, which every peer holds alike; plus the peak of a peer's helper processes, quark's
// plugin host, which runs its pure steps); cpuSeconds = user + system CPU of the whole process
// (all its threads; quark adds its plugin host's) between start and stop, so cpuSeconds /
// seconds = cores busy; startRssMb =
// the resident set size when the clock starts (input built, engine started); ifTrue and
// ifFalse = documents counted at each end of the decision, which run.mjs compares across
// peers. The optional fields may be left out; run.mjs then shows "–".

/** Starts the clock; the returned function stops it. */
export function startClock() {
  const startRssMb = process.memoryUsage.rss() / 2 ** 20;
  const cpu = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  return () => {
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const used = process.cpuUsage(cpu);
    return { seconds, cpuSeconds: (used.user + used.system) / 1e6, startRssMb };
  };
}

/** Prints the one result line. */
export function report(docs, { seconds, cpuSeconds, startRssMb, childRssMb = 0, ...counts }) {
  const line = {
    docsPerSecond: Math.round(docs / seconds),
    // childRssMb: the peak of a peer's helper processes (quark's plugin host), added
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024 + childRssMb),
    seconds: Number(seconds.toFixed(4)),
    ...(cpuSeconds === undefined ? {} : { cpuSeconds: Number(cpuSeconds.toFixed(3)) }),
    ...(startRssMb === undefined ? {} : { startRssMb: Math.round(startRssMb) }),
    ...counts,
  };
  process.stdout.write(JSON.stringify(line) + '\n');
}

/** The document count from argv[2]. */
export function docsArg() {
  const docs = Number(process.argv[2] ?? 100000);
  if (!Number.isInteger(docs) || docs < 1) throw new Error(`usage: node ${process.argv[1]} <docs>`);
  return docs;
}
