// modmirror.mjs is the Worker's entry point (wrangler.toml's main; `make worker` copies it
// beside syumai/workers' glue in build/worker/). It answers the two commonest requests without
// starting the Go program, whose start-up (a fresh Go instance per request) is most of a
// request's CPU time:
//
//   - a plain GET or HEAD of a stored .info, .mod or .zip: the R2 object's stream is the
//     response body, with the headers the Go core sends for a hit;
//   - a plain GET or HEAD of a list, @latest, or the checksum database's latest or a lookup that
//     the Go side put in the edge cache (caches.default) less than 60 s ago.
//
// Everything else, misses included, goes to the Go program, which decides as it always does.
// "Plain" means no Authorization, Range or conditional header; and stored objects are served
// here only when the Worker has no tokens and no private modules configured (then anyone may
// read any stored module, and the Go core would answer exactly this).
import goWorker from "./worker.mjs";

// A module object's path: only characters the go command's escaped paths use, no "%", no dot
// segments, nothing under the store's own "_mirror/" area.
const objectPath = /^\/(?!_)(?:[A-Za-z0-9~!+_-][A-Za-z0-9.~!+_-]*\/)+@v\/[A-Za-z0-9.~!+_-]+\.(info|mod|zip)$/;
const contentTypes = { info: "application/json", mod: "text/plain; charset=utf-8", zip: "application/zip" };
const immutable = "public, max-age=31536000, immutable";

// Paths whose answers the Go side keeps in the edge cache (functions/workers/edgecache.go).
const edgePath = /^\/(?:(?:[A-Za-z0-9.~!+_-]+\/)+(?:@v\/list|@latest)|sumdb\/[A-Za-z0-9.-]+\/(?:latest|lookup\/[A-Za-z0-9.~!+_\/@-]+))$/;
const originalCacheControl = "X-Modmirror-Cache-Control";

const skipHeaders = ["authorization", "range", "if-none-match", "if-modified-since", "if-match", "if-unmodified-since", "if-range"];

function isSet(v) {
	return typeof v === "string" && v !== "";
}

// mayServeStored reports whether anyone may read every stored object.
function mayServeStored(env) {
	return !isSet(env.MODMIRROR_TOKENS) && !isSet(env.MODMIRROR_PRIVATE) && env.MODMIRROR_ANONYMOUS !== "false";
}

function logRequest(method, path, status, bytes, cache, start) {
	console.log(JSON.stringify({
		time: new Date().toISOString(), level: "INFO", msg: "request", method, path, status, bytes, cache,
		duration_ms: Date.now() - start, entry: "js",
	}));
}

async function storedObject(request, env, url, start) {
	const m = objectPath.exec(url.pathname);
	if (m === null || url.pathname.includes("..") || !mayServeStored(env) || env.MODULES === undefined) {
		return null;
	}
	const key = url.pathname.slice(1);
	const head = request.method === "HEAD";
	const obj = head ? await env.MODULES.head(key) : await env.MODULES.get(key);
	if (obj === null) {
		return null;
	}
	const headers = new Headers({
		"Content-Type": contentTypes[m[1]],
		"Cache-Control": immutable,
		"ETag": obj.httpEtag,
		"Last-Modified": obj.uploaded.toUTCString(),
		"Content-Length": String(obj.size),
	});
	logRequest(request.method, url.pathname, 200, head ? 0 : obj.size, "hit", start);
	return new Response(head ? null : obj.body, { status: 200, headers });
}

async function edgeCached(request, url, start) {
	if (!edgePath.test(url.pathname) || typeof caches === "undefined") {
		return null;
	}
	const cached = await caches.default.match(url.origin + url.pathname);
	if (cached === undefined) {
		return null;
	}
	const headers = new Headers(cached.headers);
	const cc = headers.get(originalCacheControl);
	if (cc !== null) {
		headers.set("Cache-Control", cc);
		headers.delete(originalCacheControl);
	}
	const head = request.method === "HEAD";
	logRequest(request.method, url.pathname, cached.status, head ? 0 : Number(headers.get("Content-Length")), "edge", start);
	return new Response(head ? null : cached.body, { status: cached.status, headers });
}

async function fetch(request, env, ctx) {
	const start = Date.now();
	if ((request.method === "GET" || request.method === "HEAD") && !skipHeaders.some((h) => request.headers.has(h))) {
		const url = new URL(request.url);
		try {
			const resp = (await storedObject(request, env, url, start)) ?? (await edgeCached(request, url, start));
			if (resp !== null) {
				return resp;
			}
		} catch (e) {
			// The Go program answers instead, and says what failed if it fails too.
			console.log(JSON.stringify({ time: new Date().toISOString(), level: "WARN", msg: "entry: fast path", path: url.pathname, err: String(e) }));
		}
	}
	return goWorker.fetch(request, env, ctx);
}

export default { ...goWorker, fetch };
