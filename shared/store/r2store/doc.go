// Package r2store is a store.Store on a Cloudflare R2 bucket, reached through the Worker's R2
// binding (the JavaScript object env.MODULES) from Go compiled to WebAssembly.
//
// It calls the binding directly through syscall/js rather than through syumai/workers' r2
// package, which buffers whole bodies and has no conditional puts:
//
//   - Put with IfAbsent is put(key, body, {onlyIf: {etagDoesNotMatch: "*"}}) and with IfMatch
//     put(key, body, {onlyIf: {etagMatches: etag}}); R2 decides atomically and answers null
//     when the condition fails.
//   - A Put of known size streams through a FixedLengthStream, chunk by chunk with
//     backpressure, so a zip never sits whole in Go memory; a Put of unknown size is read into
//     memory first (lists and other small objects).
//   - StageStream (store.StreamStager) is a multipart upload: parts of PartSize go up as they
//     are written, Commit completes the upload and Close before it aborts it, so an object too
//     large for memory is stored while it is verified and appears only if it passes.
//   - An Object's body is the binding's ReadableStream. Its WriteTo hands that stream over to a
//     syumai/workers ResponseWriter, so a stored zip streams from R2 to the client without
//     passing through Go; ReadAt makes ranged gets.
//
// ETags are R2's httpEtag (the quoted MD5 of a single-part upload), which is derived from the
// content, as store.Info requires.
//
// The package has code only for GOOS=js GOARCH=wasm; this file lets the other platforms
// list, vet and lint it.
package r2store
