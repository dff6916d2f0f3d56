// r2export.mjs PERSIST OUT: writes every object of the R2 bucket that `wrangler dev --local
// --persist-to PERSIST` kept for wrangler.toml's MODULES binding (bucket "modmirror") to OUT,
// each as a plain file under its key, read back through miniflare (which wrangler runs on) as
// the Worker would read it. For the Worker's static-fallback test; the Worker must be stopped.
import { Miniflare, convertV4MiniflareOptions } from "miniflare";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";

const [persist, out] = process.argv.slice(2);
if (!persist || !out) {
	console.error("usage: node r2export.mjs PERSIST OUT");
	process.exit(2);
}
// As wrangler's own local commands open its persisted state.
const mf = new Miniflare(convertV4MiniflareOptions({
	modules: true,
	script: "",
	resourcePersistencePath: path.join(persist, "v3"),
	r2Buckets: { MODULES: "modmirror" },
}));
try {
	const bucket = await mf.getR2Bucket("MODULES");
	let cursor;
	let n = 0;
	do {
		const page = await bucket.list({ cursor, limit: 1000 });
		for (const o of page.objects) {
			const obj = await bucket.get(o.key);
			const file = path.join(out, ...o.key.split("/"));
			await mkdir(path.dirname(file), { recursive: true });
			await writeFile(file, new Uint8Array(await obj.arrayBuffer()));
			n++;
		}
		cursor = page.truncated ? page.cursor : undefined;
	} while (cursor !== undefined);
	console.log(`exported ${n} objects`);
} finally {
	await mf.dispose();
}
