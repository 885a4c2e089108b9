const dir = process.argv[2];
const { measureColdStart } = await import(`${dir}/bench/cold-start.ts`);
const r = await measureColdStart(10);
for (const f of r.functions) console.log(dir, f.name, f.bundleBytes, 'ratio', f.ratio.median.toFixed(2), 'importMs', f.importMs.median.toFixed(0));
console.log('bare', r.bareNodeMs.median.toFixed(0));
