// Package testkit is the hermetic test kit shared by the end-to-end tests and
// benchmarks of modmirror.
//
// It provides:
//
//   - fixture modules, loaded from testdata/modules/*.txtar ([LoadFixtures]),
//     generated in bulk ([Synthetic]) or as large incompressible zips kept on
//     disk ([Big]);
//   - a fake upstream ([NewUpstream]) that speaks the GOPROXY protocol for
//     those modules and runs a local checksum database that knows their true
//     hashes, with hooks to tamper with responses, slow them down, count them
//     and take the upstream down;
//   - the go command as a test client ([NewGoEnv]), with a fresh module cache
//     and GOPATH per test, pointed at any proxy URL, and the fixture project
//     testdata/project ([CopyProject]);
//   - child processes a test runs in the background, such as the servers under
//     test ([StartProcess]): started, waited for until they are ready, and
//     stopped when the test ends, with their output for failure messages.
//
// Nothing in this package touches the network beyond 127.0.0.1.
//
// # Reaching the checksum database
//
// The go command reaches a checksum database in one of two ways, and tests
// choose between them with the GOSUMDB value:
//
//   - [Upstream.GOSUMDB] ("name+key URL") names the database's URL explicitly.
//     The go command then talks to that URL directly and never asks any proxy
//     in GOPROXY about the database; a plain http:// URL is accepted (no
//     GOINSECURE needed).
//   - [Upstream.SumDBKey] alone ("name+key") makes the go command ask each
//     proxy in GOPROXY for <proxy>/sumdb/<name>/supported and, on 200, send
//     every database request through that proxy. A 404 or 410 moves on to the
//     next proxy and finally to https://<name>, which does not exist for the
//     test name. Use this form to test a proxy's checksum-database pass-through:
//     env.Set("GOSUMDB", up.SumDBKey).
//
// # What the go command does (go1.26), learned by these tests
//
//   - A plain http:// GOPROXY needs no GOINSECURE; neither does an http://
//     URL in GOSUMDB. GONOSUMCHECK does not exist; GONOSUMDB does.
//   - Credentials in a GOPROXY URL (http://user:token@...) are refused over
//     plain http ("refusing to pass credentials to insecure URL"), even
//     with GOINSECURE: use an https upstream (Options.TLS) or server, and
//     [GoEnv.TrustCertificate].
//   - With every hash in go.sum, "go mod download" and "go build" never
//     contact the checksum database; "go install pkg@version" run outside
//     any module looks every module it downloads up in the database.
//   - "go install example.com/tool/cmd/hello@v1.0.0" first asks for
//     .info of every prefix of the package path (example.com/@v/v1.0.0.info,
//     example.com/tool/cmd/@v/v1.0.0.info, ...); a proxy must answer those
//     with 404 or 410 for the go command to go on.
//   - A zip with other content but a valid structure fails with "verifying
//     module: checksum mismatch" and "SECURITY ERROR"; a .mod file likewise
//     with "verifying go.mod". A flipped byte inside compressed data fails
//     earlier, with "zip: checksum error" (the CRC); a flipped byte in a
//     local file header can go unnoticed, since h1 hashes cover only file
//     names and contents.
//   - GOTELEMETRY cannot be set from the environment (it is a read-only go
//     env value); [NewGoEnv] sets it anyway, to no effect.
package testkit
